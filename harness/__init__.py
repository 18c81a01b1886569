"""mount-notify-harness: build, boot and test Linux mount-notification patch series."""

__version__ = "0.1.0"
