"""Face generators: the gallery's unconditional ones, Arc2Face, and the models the demo writes or
copies."""
