//! Attacks on the dashboard's secrets that the HTTP tests in `dashboard.rs` do not try: what
//! an anonymous client can learn about the password from what the dashboard hands it.

mod dashboard_support;

use dashboard_support::{Dash, PASSWORD, token_in};
use hmac::{Hmac, KeyInit, Mac};
use queue_core::testing::TestRedis;
use sha2::Sha256;

/// HMAC-SHA256 of length-prefixed parts, as the dashboard's signing scheme builds them.
fn hmac_parts(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for p in parts {
        m.update(&(p.len() as u64).to_be_bytes());
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Anyone may load the login page with a nonce cookie of their choosing and read the form's
/// token. If the signing key were one HMAC of the password, that pair would let them test
/// password guesses offline at GPU speed, with no login attempt and no rate limit.
#[tokio::test]
async fn the_login_page_is_no_cheap_offline_password_oracle() {
    let redis = TestRedis::start();
    let dash = Dash::start(&redis, "atk_oracle").await;
    let nonce = "00112233445566778899aabbccddeeff";
    let page = dash
        .http
        .get(dash.url(""))
        .header("cookie", format!("dq_csrf={nonce}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 401, "anonymous");
    let token = token_in(&page.text().await.unwrap());
    assert_eq!(token.len(), 64, "the page carries a token: {token}");

    // One guess, checked the cheap way: the right password must not confirm itself.
    let fast_key = hmac_parts(PASSWORD.as_bytes(), &[b"dynoqueue dashboard key v1"]);
    let fast_token = hex(&hmac_parts(&fast_key, &[b"csrf", nonce.as_bytes()]));
    assert_ne!(
        token, fast_token,
        "the public token confirms a password guess with two HMACs"
    );
}

/// One foreign key of the wrong type where the dashboard expects a queue (a list) must not
/// take every page that lists queues down with a 500 until someone repairs Redis by hand.
#[tokio::test]
async fn one_queue_key_of_the_wrong_type_leaves_the_pages_up() {
    let redis = TestRedis::start();
    let dash = Dash::start(&redis, "atk_types").await;
    let k = dash.client.keys();
    dash.redis(&["sadd", &k.queues(), "good", "broken"]).await;
    dash.redis(&["lpush", &k.queue("good"), "{}"]).await;
    dash.redis(&["set", &k.queue("broken"), "not a list"]).await;
    for path in ["", "/queues", "/search?q=a&in=dead"] {
        let r = dash.get(path).await;
        let status = r.status();
        let body = r.text().await.unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        assert!(body.contains("good"), "{path} still lists the other queues");
    }
}
