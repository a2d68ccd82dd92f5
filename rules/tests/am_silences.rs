//! Silences on the event log: Alertmanager's create/update/expire semantics, state
//! rebuilt by replay (with expirations and retention), instances converging.

mod am_common;

use std::sync::Arc;
use std::time::Duration;

use am_common::{silences, temp_log};
use argus_rules::RulesError;
use argus_rules::silences::{LabelMatcher, ManualClock, SilenceService, SilenceSpec, SilenceState};
use argus_schemas::{Labels, Payload, SilenceAction, Timestamp, topics};

const MIN: i64 = 60_000_000_000;
const T0: Timestamp = Timestamp(1_900_000_000_000_000_000);

fn spec(matchers: &str, start: Timestamp, end: Timestamp) -> SilenceSpec {
    SilenceSpec {
        id: None,
        matchers: LabelMatcher::parse_list(matchers).unwrap(),
        starts_at: start,
        ends_at: end,
        created_by: "tester".into(),
        comment: "c".into(),
    }
}

fn at(min: i64) -> Timestamp {
    Timestamp(T0.0 + min * MIN)
}

async fn actions_on_log(log: &argus_bus::EventLog) -> Vec<(String, SilenceAction)> {
    let mut out = Vec::new();
    for p in 0..log.partitions(topics::SILENCES).await.unwrap() {
        for r in log.read(topics::SILENCES, p, 0, 10_000).await.unwrap() {
            let env = argus_schemas::decode(&r.value).unwrap();
            assert_eq!(env.key.as_bytes(), r.key.as_slice());
            match env.payload {
                Payload::SilenceChange(c) => out.push((c.id, c.action)),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    out
}

fn sorted(mut v: Vec<argus_rules::silences::Silence>) -> Vec<argus_rules::silences::Silence> {
    v.sort_by(|a, b| a.id.cmp(&b.id));
    v
}

#[tokio::test]
async fn create_update_expire_follow_alertmanager() {
    let (log, _dir) = temp_log().await;
    let clock = Arc::new(ManualClock::new(T0));
    let svc = silences(&log, clock.clone());

    // A start in the past becomes now; the id is a UUID v4.
    let id = svc.set(spec("alertname=X", at(-10), at(60))).await.unwrap();
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
    let s = svc.get(&id).unwrap();
    assert_eq!((s.starts_at, s.ends_at, s.updated_at), (T0, at(60), T0));
    assert_eq!(s.state(T0), SilenceState::Active);

    // Comment and a later end on an active silence: updated in place.
    clock.set(at(1));
    let mut up = spec("alertname=X", T0, at(120));
    up.id = Some(id.clone());
    up.comment = "longer".into();
    assert_eq!(svc.set(up).await.unwrap(), id);
    let s = svc.get(&id).unwrap();
    assert_eq!(
        (s.ends_at, s.comment.as_str(), s.updated_at),
        (at(120), "longer", at(1))
    );

    // New matchers: the old one expires now, a new id is created.
    clock.set(at(2));
    let mut changed = spec("alertname=Y", T0, at(120));
    changed.id = Some(id.clone());
    let id2 = svc.set(changed).await.unwrap();
    assert_ne!(id2, id);
    let old = svc.get(&id).unwrap();
    assert_eq!(old.ends_at, at(2));
    assert_eq!(old.state(at(2)), SilenceState::Expired);
    assert_eq!(svc.get(&id2).unwrap().starts_at, at(2));

    // Moving the start of an active silence also replaces it.
    clock.set(at(3));
    let mut moved = spec("alertname=Y", at(3), at(120));
    moved.id = Some(id2.clone());
    let id3 = svc.set(moved).await.unwrap();
    assert_ne!(id3, id2);

    // A pending silence may move its start within the future, in place; expiring it
    // sets start and end to now.
    let p = svc.set(spec("job=a", at(30), at(40))).await.unwrap();
    assert_eq!(svc.get(&p).unwrap().state(at(3)), SilenceState::Pending);
    let mut later = spec("job=a", at(31), at(40));
    later.id = Some(p.clone());
    assert_eq!(svc.set(later).await.unwrap(), p);
    assert_eq!(svc.get(&p).unwrap().starts_at, at(31));
    clock.set(at(4));
    svc.expire(&p).await.unwrap();
    let e = svc.get(&p).unwrap();
    assert_eq!((e.starts_at, e.ends_at), (at(4), at(4)));

    // Expiring twice writes nothing; unknown ids are not found.
    let before = actions_on_log(&log).await.len();
    svc.expire(&p).await.unwrap();
    assert_eq!(actions_on_log(&log).await.len(), before);
    assert!(
        matches!(svc.expire("nope").await, Err(RulesError::NotFound(m)) if m == "silence not found")
    );
    let mut unknown = spec("a=b", at(4), at(9));
    unknown.id = Some("00000000-0000-4000-8000-000000000000".into());
    assert!(matches!(
        svc.set(unknown).await,
        Err(RulesError::NotFound(_))
    ));

    // Invalid silences are refused with Alertmanager's texts and write nothing.
    let err = svc.set(spec("a=~.*", at(4), at(9))).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "silence invalid: at least one matcher must not match the empty string"
    );
    assert_eq!(actions_on_log(&log).await.len(), before);

    // Every change is on the log, keyed by id, with its action.
    let acts = actions_on_log(&log).await;
    let of = |x: &str| {
        acts.iter()
            .filter(|(i, _)| i == x)
            .map(|(_, a)| *a)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        of(&id),
        vec![
            SilenceAction::Create,
            SilenceAction::Update,
            SilenceAction::Expire
        ]
    );
    assert_eq!(of(&id2), vec![SilenceAction::Create, SilenceAction::Expire]);
    assert_eq!(
        of(&p),
        vec![
            SilenceAction::Create,
            SilenceAction::Update,
            SilenceAction::Expire
        ]
    );
}

#[tokio::test]
async fn replay_rebuilds_the_state_including_expirations() {
    let (log, _dir) = temp_log().await;
    let clock = Arc::new(ManualClock::new(T0));
    let a = silences(&log, clock.clone());
    let keep = a.set(spec("alertname=A", T0, at(60))).await.unwrap();
    let gone = a.set(spec("alertname=B", T0, at(60))).await.unwrap();
    let pending = a
        .set(spec(r#"job=~"api|web""#, at(10), at(20)))
        .await
        .unwrap();
    clock.set(at(5));
    a.expire(&gone).await.unwrap();
    let mut up = spec("alertname=A", T0, at(90));
    up.id = Some(keep.clone());
    up.comment = "extended".into();
    a.set(up).await.unwrap();

    let b = silences(&log, clock.clone());
    assert!(b.list().is_empty());
    let n = b.replay().await.unwrap();
    assert_eq!(n, 5);
    assert_eq!(sorted(b.list()), sorted(a.list()));
    assert_eq!(b.get(&keep).unwrap().comment, "extended");
    assert_eq!(b.get(&gone).unwrap().state(at(5)), SilenceState::Expired);
    assert_eq!(b.get(&pending).unwrap().state(at(5)), SilenceState::Pending);

    // The replayed state silences what the original silences.
    let web = Labels::from_pairs([("job", "web")]);
    let labels_a = Labels::from_pairs([("alertname", "A")]);
    assert_eq!(b.silenced_by(&labels_a), vec![keep.clone()]);
    assert!(
        b.silenced_by(&Labels::from_pairs([("alertname", "B")]))
            .is_empty()
    );
    assert!(b.silenced_by(&web).is_empty());
    clock.set(at(15));
    assert_eq!(b.silenced_by(&web), vec![pending.clone()]);
    clock.set(at(21));
    assert!(b.silenced_by(&web).is_empty());

    // Replaying again changes nothing (records are idempotent).
    let v = b.version();
    b.replay().await.unwrap();
    assert_eq!(b.version(), v);
    let c = silences(&log, clock.clone());
    c.replay().await.unwrap();
    c.replay().await.unwrap();
    assert_eq!(sorted(c.list()), sorted(b.list()));
}

#[tokio::test]
async fn expired_silences_are_forgotten_after_the_retention() {
    let (log, _dir) = temp_log().await;
    let clock = Arc::new(ManualClock::new(T0));
    let a = silences(&log, clock.clone());
    let old = a.set(spec("alertname=Old", T0, at(10))).await.unwrap();
    let live = a
        .set(spec("alertname=Live", T0, at(200 * 60)))
        .await
        .unwrap();

    // 120h after its end the expired silence is still listed; just after, it is not.
    clock.set(at(10 + 120 * 60 - 1));
    assert!(a.get(&old).is_some());
    let b = silences(&log, clock.clone());
    b.replay().await.unwrap();
    assert!(b.get(&old).is_some());

    clock.set(at(10 + 120 * 60 + 1));
    assert_eq!(a.gc(), 1);
    assert!(a.get(&old).is_none());
    let c = silences(&log, clock.clone());
    c.replay().await.unwrap();
    assert!(c.get(&old).is_none());
    assert!(c.get(&live).is_some());
    assert_eq!(c.list().len(), 1);
}

#[tokio::test]
async fn instances_converge_through_the_log() {
    let (log, _dir) = temp_log().await;
    let clock = Arc::new(ManualClock::new(T0));
    let a = silences(&log, clock.clone());
    let b = silences(&log, clock.clone());
    a.replay().await.unwrap();
    b.replay().await.unwrap();

    let id = a.set(spec("alertname=X", T0, at(60))).await.unwrap();
    assert!(b.get(&id).is_none());
    assert_eq!(b.sync().await.unwrap(), 1);
    assert_eq!(b.get(&id), a.get(&id));

    // B updates what A created; A sees it after reading the log.
    clock.set(at(1));
    let mut up = spec("alertname=X", T0, at(60));
    up.id = Some(id.clone());
    up.comment = "from b".into();
    b.set(up).await.unwrap();
    a.sync().await.unwrap();
    assert_eq!(a.get(&id).unwrap().comment, "from b");

    // A's own records read back do not change its state.
    let v = a.version();
    a.sync().await.unwrap();
    assert_eq!(a.version(), v);

    // B expires; following (in the background) brings it to A.
    clock.set(at(2));
    b.expire(&id).await.unwrap();
    let follower = a.follow(Duration::from_millis(20));
    let mut ok = false;
    for _ in 0..100 {
        if a.get(&id).unwrap().state(at(2)) == SilenceState::Expired {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    follower.abort();
    assert!(ok, "the expiry did not reach the other instance");
    assert_eq!(sorted(a.list()), sorted(b.list()));
}

#[tokio::test]
async fn matcher_types_silence_as_alertmanager_does() {
    let (log, _dir) = temp_log().await;
    let clock = Arc::new(ManualClock::new(T0));
    let svc: SilenceService = silences(&log, clock.clone());
    let eq = svc.set(spec("alertname=X", T0, at(60))).await.unwrap();
    let ne = svc
        .set(spec(r#"alertname=X,team!="ops""#, T0, at(60)))
        .await
        .unwrap();
    let re = svc
        .set(spec(r#"instance=~"db-[0-9]+""#, T0, at(60)))
        .await
        .unwrap();
    let nre = svc
        .set(spec(r#"alertname=Y,env!~"prod.*""#, T0, at(60)))
        .await
        .unwrap();

    let l = |pairs: &[(&str, &str)]| Labels::from_pairs(pairs.iter().copied());
    let mut both = vec![eq.clone(), ne.clone()];
    both.sort();
    // A missing label is the empty string: team!="ops" matches.
    assert_eq!(svc.silenced_by(&l(&[("alertname", "X")])), both);
    assert_eq!(
        svc.silenced_by(&l(&[("alertname", "X"), ("team", "ops")])),
        vec![eq.clone()]
    );
    // Regexes are anchored.
    assert_eq!(
        svc.silenced_by(&l(&[("instance", "db-12")])),
        vec![re.clone()]
    );
    assert!(svc.silenced_by(&l(&[("instance", "xdb-12")])).is_empty());
    assert_eq!(
        svc.silenced_by(&l(&[("alertname", "Y"), ("env", "dev")])),
        vec![nre.clone()]
    );
    assert!(
        svc.silenced_by(&l(&[("alertname", "Y"), ("env", "production")]))
            .is_empty()
    );
}
