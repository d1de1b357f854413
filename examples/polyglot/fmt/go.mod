module example.com/polyglot/fmt

go 1.25
