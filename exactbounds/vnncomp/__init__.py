"""VNN-COMP conventions: benchmark folders (``instances.csv``), a tool's result files and
counterexamples (``files``), and the suite runner (``runner``, ``task``, ``report``)."""
