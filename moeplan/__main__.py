"""``python -m moeplan``: the same entry point as the ``moeplan`` script (``moeplan.cli:main``)."""

from moeplan.cli import main

if __name__ == "__main__":
    main()
