import PESVICLI

PESVICommand.main()
