// tools/unleash-server is a Node package, not Go code. This file only makes it a module of its
// own, so that the go command's ./... (go vet, go test) does not descend into node_modules,
// where some npm packages ship Go sources (flatted does).
module github.com/flagsync/flagsync/tools/unleash-server

go 1.26
