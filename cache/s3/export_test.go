package s3

// NewRoleProvider lets the tests drive the role's credentials on a clock
// of their own.
var NewRoleProvider = newRoleProvider
