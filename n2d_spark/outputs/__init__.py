"""What a run publishes: a staging folder published whole, labels/ rejected/ clusters/ and the
other tables, catalog tables, run.json, and the SQL queries over them."""
