"""Face recognition: alignment, embedders, the iResNet and its heads, training and verification."""
