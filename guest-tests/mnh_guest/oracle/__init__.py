"""What a change must produce, and how what arrived is compared with it.

- ``topology``: the facts both backends' rules are written in (places, subtrees, the
  diff of two snapshots: mounts added, removed, moved, attributes changed);
- ``model``: what a rule is (data and citations), and a ``Prediction`` of one operation by
  two models, with their disagreement;
- ``watch_queue``: the specification model of the mount-notification series (the verdict);
- ``watch_queue_impl``: the same operations as the series' code handles them;
- ``fanotify``: the specification model of upstream fanotify mount events;
- ``match``: expected against received records (missing, unexpected, wrong-field).

Every rule works on two mount-table snapshots (``mnh_guest.mounts``) and hints from the
scenario; nothing here touches the kernel.
"""
