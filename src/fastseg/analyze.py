"""Analysis face.  STUB."""


class Report:
    pass


def analyze(path_or_segments, **kwargs):
    raise NotImplementedError
