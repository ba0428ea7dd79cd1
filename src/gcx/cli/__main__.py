from gcx.cli.main import main

main()
