package webhook

import (
	"context"
	"errors"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/nodeclass-guard/nodeclass-guard/authz"
)

var (
	specPath            = field.NewPath("spec")
	rolePath            = specPath.Child("role")
	instanceProfilePath = specPath.Child("instanceProfile")
	nodeClassRefPath    = specPath.Child("template", "spec", "nodeClassRef")
)

// class is what the class rules read of a node class.
type class struct {
	name    string
	role    string
	profile string
	// eks marks an EKS Auto Mode NodeClass: EKS, not Karpenter's
	// controller, launches its nodes, so no controller permission is
	// checked.
	eks bool
	// nodePool is the NodePool whose launches are checked (its name is a
	// launch tag); "" means the class's own name.
	nodePool string
}

// CheckEC2NodeClass validates a Karpenter EC2NodeClass: format, IAM state,
// and the controller's permissions.
func (c *Checker) CheckEC2NodeClass(ctx context.Context, nc *EC2NodeClass) Verdict {
	return c.checkClass(ctx, class{name: nc.Name, role: nc.Spec.Role, profile: nc.Spec.InstanceProfile})
}

// CheckNodeClass validates an EKS Auto Mode NodeClass: format and IAM
// state; EKS, not Karpenter's controller, launches its nodes.
func (c *Checker) CheckNodeClass(ctx context.Context, nc *NodeClass) Verdict {
	return c.checkClass(ctx, class{name: nc.Name, role: nc.Spec.Role, profile: nc.Spec.InstanceProfile, eks: true})
}

// checkClass runs the format rules, then the IAM rules of spec.role or of
// spec.instanceProfile under one deadline.
func (c *Checker) checkClass(ctx context.Context, cl class) Verdict {
	var v Verdict
	v.addAll(CheckExclusive(specPath, cl.role, cl.profile))
	var (
		ref       RoleRef
		roleOK    bool
		profName  string
		profileOK bool
	)
	if cl.role != "" {
		var fs []Finding
		ref, fs, roleOK = CheckRoleFormat(rolePath, cl.role, c.Account())
		v.addAll(fs)
	}
	if cl.profile != "" {
		var fs []Finding
		profName, fs, profileOK = CheckInstanceProfileFormat(instanceProfilePath, cl.profile)
		v.addAll(fs)
		if cl.eks {
			v.addAll(CheckEKSInstanceProfilePrefix(instanceProfilePath, cl.profile))
		}
	}
	if c.cfg.IAM == nil || (cl.role != "" && cl.profile != "") || (!roleOK && !profileOK) {
		return v
	}
	if c.cfg.IAMTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.IAMTimeout)
		defer cancel()
	}
	asked := time.Now()
	var n notes
	if roleOK {
		c.roleClass(ctx, &v, &n, ref, cl)
	} else {
		c.profileClass(ctx, &v, &n, profName, cl)
	}
	n.report(&v, c.cfg.OnIAMError)
	v.IAMTime = time.Since(asked)
	return v
}

// permissionsChecked reports whether the controller's permissions can be
// checked; when not, it adds the warning once.
func (c *Checker) permissionsChecked(v *Verdict, cl class) bool {
	if cl.eks {
		return false
	}
	if c.controllerARN == "" {
		v.add(warn(PermissionChecksSkipped, specPath,
			"the Karpenter controller's role is unknown, so iam:PassRole and launch permissions were not checked. Start nodeclass-guard with --controller-role"))
		return false
	}
	return true
}

// roleClass checks a class naming spec.role. Round one asks for the role
// and every permission at once, iam:PassRole for the ARN spec.role implies;
// round two asks iam:PassRole again only when IAM says the role's real
// path is another.
func (c *Checker) roleClass(ctx context.Context, v *Verdict, n *notes, ref RoleRef, cl class) {
	perms := c.permissionsChecked(v, cl)
	guess := c.nodeRoleARN(ref)
	var pass, actions, launch []authz.Question
	if perms {
		pass = c.passRoleQuestions(guess, true)
		actions = c.profileActionQuestions(cl.name)
		launch = c.launchQuestions(cl)
	}
	qs := make([]Query, 0, 1+len(pass)+len(actions)+len(launch))
	qs = append(qs, roleQuery(ref.Name))
	qs = appendPermissions(qs, pass)
	qs = appendPermissions(qs, actions)
	qs = appendPermissions(qs, launch)
	as := c.ask(ctx, qs)
	roleAns, rest := as[0], as[1:]
	passAns, rest := rest[:len(pass)], rest[len(pass):]
	actionAns, launchAns := rest[:len(actions)], rest[len(actions):]

	if c.judgeRole(v, n, ref, roleAns) && perms {
		if real := roleAns.Role.ARN; real != "" && real != guess {
			pass = c.passRoleQuestions(real, true)
			passAns = c.ask(ctx, appendPermissions(nil, pass))
		}
		v.addAll(c.judgePassRole(n, rolePath, pass, passAns))
	}
	if perms {
		v.addAll(c.judgeProfileActions(n, cl.name, actions, actionAns))
		v.addAll(c.judgeLaunch(n, cl, launch, launchAns))
	}
}

// profileClass checks a class naming spec.instanceProfile. Round one asks
// for the profile, iam:GetInstanceProfile on the ARN its name implies and
// the launch permissions; round two asks iam:PassRole on the role inside
// the profile (and iam:GetInstanceProfile again if the profile has a path).
func (c *Checker) profileClass(ctx context.Context, v *Verdict, n *notes, name string, cl class) {
	perms := c.permissionsChecked(v, cl)
	guess := authz.InstanceProfileARN(c.partition, c.Account(), "/", name)
	var read, launch []authz.Question
	if perms {
		read = []authz.Question{c.profileReadQuestion(guess)}
		launch = c.launchQuestions(cl)
	}
	qs := make([]Query, 0, 1+len(read)+len(launch))
	qs = append(qs, profileQuery(name))
	qs = appendPermissions(qs, read)
	qs = appendPermissions(qs, launch)
	as := c.ask(ctx, qs)
	profAns, rest := as[0], as[1:]
	readAns, launchAns := rest[:len(read)], rest[len(read):]

	prof, ok := c.judgeProfile(v, n, name, profAns)
	if errors.Is(profAns.Err, authz.ErrNotFound) {
		read, readAns = nil, nil // a read permission on a profile that does not exist says nothing
	}
	var pass []authz.Question
	var passAns []Answer
	if ok && perms {
		var second []authz.Question
		if prof.ARN != "" && prof.ARN != guess {
			read = []authz.Question{c.profileReadQuestion(prof.ARN)}
			second = append(second, read...)
		}
		if len(prof.Roles) > 0 {
			pass = c.passRoleQuestions(prof.Roles[0].ARN, false)
			second = append(second, pass...)
		}
		if len(second) > 0 {
			got := c.ask(ctx, appendPermissions(nil, second))
			if len(second) > len(pass) {
				readAns, got = got[:1], got[1:]
			}
			passAns = got
		}
	}
	if perms {
		v.addAll(c.judgeProfileRead(n, read, readAns))
	}
	if ok {
		if c.judgeProfileRole(v, name, prof) && perms {
			v.addAll(c.judgePassRole(n, instanceProfilePath, pass, passAns))
		}
	}
	if perms {
		v.addAll(c.judgeLaunch(n, cl, launch, launchAns))
	}
}
