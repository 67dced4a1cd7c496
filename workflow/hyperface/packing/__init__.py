"""The packing problem on the embedding sphere: objectives, nearest neighbours, the solver."""
