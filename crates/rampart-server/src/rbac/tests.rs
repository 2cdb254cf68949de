#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use rampart_core::Identity;

use super::{AdminArea, Permission, Roles};

fn who(roles: &[&str]) -> Identity {
    Identity::new("x", roles.iter().map(|r| (*r).to_owned()).collect())
}

#[test]
fn builtin_predictor_may_predict_everything_and_nothing_else() {
    let g = Roles::builtin().grants(&who(&["predictor"]));
    assert!(g.may_predict("any"));
    assert!(!g.output_full());
    assert!(!g.may_admin(AdminArea::Models));
}

#[test]
fn grants_are_the_union_of_roles() {
    let mut t = BTreeMap::new();
    t.insert("a".to_owned(), vec!["predict:fraud".to_owned()]);
    t.insert(
        "b".to_owned(),
        vec!["output:full".to_owned(), "admin:audit".to_owned()],
    );
    let roles = Roles::from_config(Some(&t));
    let g = roles.grants(&who(&["a", "b", "unknown"]));
    assert!(g.may_predict("fraud") && !g.may_predict("churn"));
    assert!(g.output_full());
    assert!(g.may_admin(AdminArea::Audit) && !g.may_admin(AdminArea::Identities));
    assert_eq!(roles.grants(&who(&["predictor"])), Default::default());
}

#[test]
fn permissions_parse_strictly() {
    assert_eq!(
        Permission::parse("predict:*"),
        Some(Permission::Predict(None))
    );
    assert_eq!(Permission::parse("admin:*"), Some(Permission::Admin(None)));
    for bad in ["predict", "predict:", "admin:root", "output:some", "*"] {
        assert_eq!(Permission::parse(bad), None, "{bad}");
    }
}

#[test]
fn output_certificate_is_its_own_grant() {
    // See: issue 9. The certified radius is opt-in, and output:full does not imply it.
    assert_eq!(
        Permission::parse("output:certificate"),
        Some(Permission::OutputCertificate)
    );
    let mut table = BTreeMap::new();
    table.insert("full".to_owned(), vec!["output:full".to_owned()]);
    table.insert("cert".to_owned(), vec!["output:certificate".to_owned()]);
    let roles = Roles::from_config(Some(&table));
    assert!(!roles.grants(&who(&["full"])).output_certificate());
    assert!(roles.grants(&who(&["cert"])).output_certificate());
    assert!(!Roles::builtin()
        .grants(&who(&["predictor"]))
        .output_certificate());
}
