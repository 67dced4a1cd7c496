"""What stages write and read: manifests, image containers, lineage, shards, resumable state."""
