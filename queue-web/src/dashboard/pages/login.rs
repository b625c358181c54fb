//! The login form, answered with `401` to a request without a session.

use askama::Template;
use axum::response::{IntoResponse, Response};

use crate::dashboard::base::Base;
use crate::dashboard::csrf::CsrfToken;

/// The login page.
#[derive(Template)]
#[template(path = "login.html")]
pub(crate) struct LoginPage {
    pub(crate) base: Base,
    pub(crate) csrf: CsrfToken,
    pub(crate) error: Option<&'static str>,
}

/// The rendered login page.
pub(crate) fn login_page(page: &LoginPage) -> Response {
    match super::render(page) {
        Ok(html) => html.into_response(),
        Err(e) => e.into_response(),
    }
}
