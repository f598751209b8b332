"""The synthetic lower-leg CT angiography phantom: built-in demo scan and ground truth."""
