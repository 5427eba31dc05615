// Package helm holds the tests of wharf's Helm chart, deploy/helm/wharf:
// helm lint, helm template for the defaults and for every example under
// wharf/examples, each rendered object decoded strictly into its
// Kubernetes type (an unknown or misspelt field fails), wharf's config
// file from the ConfigMap loaded with wharf's own loader, the notes helm
// install prints, and the values' table in wharf/README.md made from the
// comments in values.yaml.
//
// helm is a separate binary (.ci/install-helm.sh builds it): the tests
// that run it skip without one, unless WHARF_HELM_REQUIRED is set, as
// .ci/run sets it. The Kubernetes API types are test dependencies only:
// this package has no code of its own, and wharf's binary imports none of
// them.
package helm
