"""``medtui bench``: variants, timing and memory, the demo eval, and one run of them all (``run``)."""
