"""The ``ecva`` command: one module per command group, loaded only when that command runs."""
