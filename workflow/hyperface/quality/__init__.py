"""What a dataset is worth: statistics, the independent judge's verdict, leakage of real faces."""
