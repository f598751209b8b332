"""Loading CT data from disk into a Volume: DICOM series, NIfTI, NRRD, MetaImage."""
