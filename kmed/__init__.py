"""kmed: a Korean medical consultation assistant with grounded, cited answers.

    from kmed import Assistant
    reply = Assistant.load().session().ask("어제부터 열이 나고 목이 아파요")
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["Assistant", "__version__"]


def __getattr__(name: str):
    # Imported lazily so `import kmed` stays cheap for the CLI and for tools that need only parts.
    if name == "Assistant":
        from kmed.agent.assistant import Assistant

        return Assistant
    raise AttributeError(name)
