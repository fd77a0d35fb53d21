"""The nodes both graphs run: retrieve, narrow (NL2SQL) and grade."""
