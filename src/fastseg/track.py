"""Tracking face.  STUB."""

TRANSITIONS = None


class Connections:
    pass


class Tracker:
    pass


def track(segments, **kwargs):
    raise NotImplementedError


def transition(states, events):
    raise NotImplementedError
