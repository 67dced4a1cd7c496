"""What people read: the report's figures and the licence table of the cards."""
