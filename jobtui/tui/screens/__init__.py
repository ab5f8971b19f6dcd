"""The console's screens: the seven views, the detail screens and the modals."""
