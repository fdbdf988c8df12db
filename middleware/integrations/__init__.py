"""The edge: adapters that fit ragpress into other frameworks (``langchain``).

They import the service's library and clients; nothing in ragpress imports them
(the import contracts in ``.importlinter`` check it). Each adapter package imports
its framework when it is imported, never before.
"""
