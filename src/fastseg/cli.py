"""The fastseg command line.  STUB."""


def main(argv=None):
    raise NotImplementedError
