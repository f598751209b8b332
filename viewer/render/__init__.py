"""VTK rendering: scene, mappers, offscreen render_to_array, slices. No Qt."""
