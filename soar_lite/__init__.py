"""soar_lite: a runnable reproduction of SOAR (Sundaram et al., arXiv 2601.18778).

Heavy imports (torch, transformers, peft, unsloth) happen inside the functions that need them, so
`import soar_lite` is cheap and the backend can be chosen before transformers is imported.
"""
__version__ = "0.1.0"
