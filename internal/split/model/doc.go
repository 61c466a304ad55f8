// Package splitmodel is the model of Split (Harness FME) feature flags that flagsync keeps
// in Git: a flag, its definition per environment, and the repository settings.
package splitmodel
