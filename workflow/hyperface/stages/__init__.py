"""What each rule of the workflow does, one module per stage; scripts/ call these."""
