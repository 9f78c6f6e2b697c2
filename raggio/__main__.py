from raggio.cli.main import main

main()
