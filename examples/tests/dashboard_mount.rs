//! The example app serves the dashboard at /dashboard only with a password configured.

use examples::app;
use queue_core::Client;
use queue_core::testing::TestRedis;
use queue_web::DashboardAuth;

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn the_dashboard_is_served_only_with_a_password() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("dashboard_mount"))
        .await
        .unwrap();
    let plain = app::router(client.clone(), queue_web::MetricsConfig::new(), None);
    let without = serve(app::with_dashboard(plain, client.clone(), None)).await;
    let r = reqwest::get(format!("{without}/dashboard")).await.unwrap();
    assert_eq!(r.status(), 404);

    let plain = app::router(client.clone(), queue_web::MetricsConfig::new(), None);
    let auth = DashboardAuth::password("pw").unwrap();
    let with = serve(app::with_dashboard(plain, client, Some(auth))).await;
    let http = reqwest::Client::new();
    let anonymous = http.get(format!("{with}/dashboard")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let ok = http
        .get(format!("{with}/dashboard/queues"))
        .basic_auth("ops", Some("pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}
