"""The pure engine pieces both markets share: keyed random streams, time windows, price paths,
arrivals, books, LEIs, table schemas and reference prices. Imports nothing of the project above it."""
