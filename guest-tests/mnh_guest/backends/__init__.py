"""The two notification designs a scenario can run against, one module each.

- ``fanotify``: upstream fanotify mount events (``FAN_MNT_ATTACH``/``FAN_MNT_DETACH`` on a
  ``FAN_MARK_MNTNS`` mark, Linux 6.15+);
- ``watch_queue``: David Howells' mount-notification series (``watch_mount`` on a
  notification pipe).

Both read their descriptor through ``reader.read_until``; what a change must produce
comes from ``mnh_guest.oracle``.
"""
