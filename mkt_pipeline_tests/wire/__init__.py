"""Wire-level stand-ins, kept only for what a real QuestDB cannot be made to do on demand: refuse
credentials in the middle of a run, reject rows, show the exact bytes and request sizes on the wire."""
