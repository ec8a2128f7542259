"""One function per ``vaekit`` command, in a module per job (training, images, models, data,
listings): it takes the parsed arguments, calls the API and prints what it wrote. Each module
imports what it uses at its top; the command line imports a command's module only when that
command runs (``cli.py`` names them as ``module:function``), so ``vaekit --help`` starts at once."""
