"""``hyperpilot chat``: the conversation (``chat.py``), its terminal loop (``repl.py``), the
checkpointed session (``session.py``), the task it will run (``spec.py``) and the facts it
answers from (``records.py``)."""
