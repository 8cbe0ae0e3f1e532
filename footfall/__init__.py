"""The host-side face of footfall: the ``footfall`` command, above every layer it dispatches to.

``footfall.cli`` composes the commands that ``train``, ``export`` and ``bench`` register; it is
the only module that imports all of them, so no lower layer ever reaches up (``tests/test_layers.py``).
"""
