"""The `sieve` command line. It only parses arguments, calls into the packages and prints.

One module per command group; this one wires them under the root command in the order `--help` lists them.
"""

from sieve.cli import db, docs, eval, finetune, graph, ingest, kb, keys, models, nl2sql, profile, search, serve
from sieve.cli.app import app

app.command()(ingest.ingest)
app.command()(search.search)
app.command()(search.ask)
app.command()(search.research)
app.command()(search.chat)
app.command()(serve.serve)
app.command("mcp")(serve.mcp_serve)
app.command()(db.migrate)
app.command("serve-models")(models.serve_models)

app.add_typer(docs.docs_app, name="docs")
app.add_typer(eval.eval_app, name="eval")
app.add_typer(models.models_app, name="models")
app.add_typer(nl2sql.nl2sql_app, name="nl2sql")
app.add_typer(kb.kb_app, name="kb")
app.add_typer(graph.graph_app, name="graph")
app.add_typer(profile.profile_app, name="profile")
app.add_typer(finetune.finetune_app, name="finetune")
app.add_typer(keys.keys_app, name="keys")
app.add_typer(db.db_app, name="db")

__all__ = ["app"]
