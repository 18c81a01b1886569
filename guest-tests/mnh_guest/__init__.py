"""In-guest library of mount-notify-harness (standard library only).

It runs inside the VM under whatever python3 the guest has, and the host imports
the very same modules (``decode`` above all), so there is one copy of each.
"""
