"""The stages of a run, by the name --stages uses; each is a function of the run's Bench."""

from . import alone, export, invocation, profile, pubsub, startup

STAGES = {
    "startup": startup.run,
    "alone": alone.run,
    "invocation": invocation.run,
    "pubsub": pubsub.run,
    "export": export.run,
    "profile": profile.run,
}
