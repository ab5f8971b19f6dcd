"""The console's screens: the six views, the detail screens and the modals."""
