"""Built-in subcommands: each module here exposes ``command: click.Command``.

:mod:`hiergen.cli._plugin` imports every module of this package (names not starting with
``_``) and registers its ``command`` through the ``hiergen_commands`` hook.
"""
