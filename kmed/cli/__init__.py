"""The ``kmed`` command line. Each area's commands live in their own module."""
