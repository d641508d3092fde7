//! What the explorer teaches: each request parameter, each flow, a learner's first
//! questions, and why the server refuses each "break it" experiment, with the spec section
//! every rule comes from. Static data only; the pages render it.
//!
//! Links point at the exact section: RFCs at www.rfc-editor.org (`#section-N`), OpenID
//! specs at openid.net (their named anchors). Labels and links are built together by
//! `rfc!` and `openid!`; the tests check that each label names the section its link opens.

/// A spec section, linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// For example "RFC 6749 section 4.1.2".
    pub label: &'static str,
    /// The section itself, with its anchor.
    pub url: &'static str,
}

/// A request parameter a learner should understand: what it is for, what attack it stops
/// (named), and where it is defined.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub purpose: &'static str,
    pub protects_against: &'static str,
    pub spec: Spec,
}

/// One of the flows the explorer runs.
#[derive(Debug, Clone, Copy)]
pub struct Flow {
    pub slug: &'static str,
    pub title: &'static str,
    /// One paragraph: what it is and when to use it.
    pub summary: &'static str,
    /// Which app should use it, and which should not.
    pub choose_when: &'static str,
    pub spec: Spec,
    /// Set when the flow is no longer recommended as it stands.
    pub caution: Option<&'static str>,
}

/// A learner's question, answered in a few short paragraphs, linking into live flows.
#[derive(Debug, Clone, Copy)]
pub struct Question {
    pub slug: &'static str,
    pub title: &'static str,
    pub paragraphs: &'static [&'static str],
    /// Flow slugs to try next.
    pub try_flows: &'static [&'static str],
    pub specs: &'static [Spec],
}

/// Why the server refused a "break it" experiment: the error a learner will see, the
/// section that says so, and why it matters.
#[derive(Debug, Clone, Copy)]
pub struct Breakage {
    pub slug: &'static str,
    pub title: &'static str,
    /// The slug in `FLOWS` this experiment runs in.
    pub flow: &'static str,
    pub expect_error: &'static str,
    pub why: &'static str,
    pub spec: Spec,
}

/// An RFC section at the RFC Editor: `rfc!("6749", "4.1.2")`.
macro_rules! rfc {
    ($n:literal, $s:literal) => {
        Spec {
            label: concat!("RFC ", $n, " section ", $s),
            url: concat!("https://www.rfc-editor.org/rfc/rfc", $n, "#section-", $s),
        }
    };
}

/// An OpenID Foundation spec section by its named anchor:
/// `openid!("OIDC Core", "openid-connect-core-1_0", "3.1.2.1", "AuthRequest")`.
macro_rules! openid {
    ($title:literal, $file:literal, $s:literal, $anchor:literal) => {
        Spec {
            label: concat!($title, " section ", $s),
            url: concat!("https://openid.net/specs/", $file, ".html#", $anchor),
        }
    };
}

macro_rules! oidc_core {
    ($s:literal, $anchor:literal) => {
        openid!("OIDC Core", "openid-connect-core-1_0", $s, $anchor)
    };
}

// OpenID Connect Core 1.0 (sections as numbered in the published text).
const CORE_INTRO: Spec = oidc_core!("1", "Introduction");
const CORE_ID_TOKEN: Spec = oidc_core!("2", "IDToken");
const CORE_AUTH_REQUEST: Spec = oidc_core!("3.1.2.1", "AuthRequest");
const CORE_ID_TOKEN_VALIDATION: Spec = oidc_core!("3.1.3.7", "IDTokenValidation");
const CORE_IMPLICIT: Spec = oidc_core!("3.2", "ImplicitFlowAuth");
const CORE_HYBRID: Spec = oidc_core!("3.3", "HybridFlowAuth");
const CORE_USERINFO: Spec = oidc_core!("5.3", "UserInfo");
const RESPONSE_MODES: Spec = openid!(
    "OAuth 2.0 Multiple Response Types",
    "oauth-v2-multiple-response-types-1_0",
    "2.1",
    "ResponseModes"
);
const DISCOVERY: Spec = openid!(
    "OIDC Discovery",
    "openid-connect-discovery-1_0",
    "4",
    "ProviderConfig"
);
const LOGOUT_REQUEST: Spec = openid!(
    "RP-Initiated Logout",
    "openid-connect-rpinitiated-1_0",
    "2",
    "RPLogout"
);
const LOGOUT_REDIRECT: Spec = openid!(
    "RP-Initiated Logout",
    "openid-connect-rpinitiated-1_0",
    "3",
    "RedirectionAfterLogout"
);

pub const PARAMS: &[Param] = &[
    Param {
        name: "response_type",
        purpose: "Says what the authorization endpoint returns, and so picks the flow. code asks for an authorization code (RFC 6749 section 4.1.1). id_token and code id_token are OpenID Connect values for the implicit and hybrid flows (OIDC Core sections 3.2 and 3.3).",
        protects_against: "Token leakage: with code, no token passes through the browser at all. This server refuses response_type=token, because an access token in the URL leaks through history, logs and Referer headers (RFC 9700 section 2.1.2).",
        spec: rfc!("6749", "3.1.1"),
    },
    Param {
        name: "client_id",
        purpose: "Names the app that asks. The server looks up that app's registered redirect URIs, grants and scopes with it (RFC 6749 section 2.2).",
        protects_against: "Code injection across apps: a code is bound to the client that asked for it, and the token endpoint refuses it to any other client (RFC 6749 section 4.1.3). An unknown client_id gets an error page, never a redirect (RFC 6749 section 4.1.2.1).",
        spec: rfc!("6749", "2.2"),
    },
    Param {
        name: "redirect_uri",
        purpose: "Where the server sends the browser back with the answer. It must exactly match a URI the app registered (RFC 9700 section 2.1). The one exception: a native app's loopback address, such as http://127.0.0.1, may use any port, because the app listens on whatever port it is given (RFC 8252 section 7.3).",
        protects_against: "Open redirectors and code leakage: with loose matching, an attacker could have codes or tokens delivered to a URL they control (RFC 9700 section 4.1). The token endpoint also checks that redirect_uri is the one the code was issued for (RFC 6749 section 4.1.3).",
        spec: rfc!("6749", "3.1.2"),
    },
    Param {
        name: "scope",
        purpose: "What the app asks to do, as a space-separated list (RFC 6749 section 3.3). openid makes the request an OpenID Connect one; profile and email release those claims (OIDC Core section 5.4); offline_access asks for a refresh token (OIDC Core section 11).",
        protects_against: "Over-broad tokens: the user sees the scopes on the consent page, and a token carries only what was granted. Asking for the least you need limits the damage a leaked token can do (RFC 9700 section 2.3).",
        spec: rfc!("6749", "3.3"),
    },
    Param {
        name: "state",
        purpose: "A random value the app makes, ties to the user's browser session, and gets back unchanged with the answer (RFC 6749 section 4.1.1). The app uses the answer only if state matches.",
        protects_against: "CSRF against the redirect URI: without it, an attacker can make your browser deliver the attacker's code, and you end up using the attacker's account (RFC 6749 section 10.12). PKCE, enforced by the server, gives the same protection (RFC 9700 section 2.1).",
        spec: rfc!("6749", "4.1.1"),
    },
    Param {
        name: "nonce",
        purpose: "A random value the app sends with an OpenID Connect request and keeps in the user's session. The server copies it into the ID token, and the app accepts the ID token only if it matches (OIDC Core section 3.1.2.1). It is required for response_type id_token and code id_token (OIDC Core sections 3.2.2.1 and 3.3.2.1).",
        protects_against: "ID token replay and injection: an ID token taken from another sign-in carries another nonce, so the app refuses it (OIDC Core section 15.5.2, RFC 9700 section 4.5.3.2).",
        spec: CORE_AUTH_REQUEST,
    },
    Param {
        name: "code_challenge",
        purpose: "The SHA-256 hash of the code_verifier, base64url-encoded, sent with the authorization request (RFC 7636 sections 4.2 and 4.3). The server stores it with the code it issues.",
        protects_against: "Authorization code interception and injection: a stolen code cannot be redeemed without the verifier behind this hash (RFC 9700 section 4.5). This server requires it from public clients (RFC 9700 section 2.1.1).",
        spec: rfc!("7636", "4.3"),
    },
    Param {
        name: "code_challenge_method",
        purpose: "How the challenge was made from the verifier. S256 means SHA-256 (RFC 7636 section 4.2). Without this parameter the method is plain, where the challenge is the verifier itself (RFC 7636 section 4.3), so always send S256.",
        protects_against: "An eavesdropper on the authorization request: with plain, whoever reads the request learns the verifier and can redeem the code (RFC 7636 section 7.2). This server refuses plain unless an operator allows it for a client. It also refuses a code_verifier for a code issued without a challenge, which blocks the PKCE downgrade attack (RFC 9700 section 4.8).",
        spec: rfc!("7636", "4.3"),
    },
    Param {
        name: "code_verifier",
        purpose: "A random secret of 43 to 128 characters that the app makes for each sign-in (RFC 7636 section 4.1). It never appears in a redirect: the app sends it only to the token endpoint, with the code (RFC 7636 section 4.5).",
        protects_against: "Authorization code interception and injection: the server hashes the verifier, compares it with the stored challenge, and refuses the code with invalid_grant if they differ (RFC 7636 section 4.6).",
        spec: rfc!("7636", "4.1"),
    },
    Param {
        name: "response_mode",
        purpose: "How the answer reaches the redirect URI: query (in the URL's query string), fragment (after the # in the URL) or form_post (an HTML form the browser posts to the app at once). This server supports all three (OAuth 2.0 Multiple Response Types section 2.1, OAuth 2.0 Form Post Response Mode section 2).",
        protects_against: "Token leakage through URLs: a URL can end up in browser history, server logs and Referer headers (RFC 9700 sections 4.2 and 4.3). Tokens must never travel in the query (OAuth 2.0 Multiple Response Types section 7), so this server refuses response_mode=query for any answer that carries a token. form_post keeps every value out of the URL.",
        spec: RESPONSE_MODES,
    },
    Param {
        name: "prompt",
        purpose: "Tells the server how to treat the sign-in pages: none (show nothing, and answer with an error such as login_required if a page is needed), login (sign in again), consent (ask again) or select_account (OIDC Core section 3.1.2.1).",
        protects_against: "Acting on a stale or borrowed session: prompt=login makes the person at the keyboard sign in again, even if someone left a session open on a shared computer. max_age does the same for sign-ins older than a limit.",
        spec: CORE_AUTH_REQUEST,
    },
    Param {
        name: "max_age",
        purpose: "The most seconds allowed since the user last actively signed in. If the sign-in is older, the server must ask again, and the ID token then carries auth_time (OIDC Core section 3.1.2.1). max_age=0 works like prompt=login.",
        protects_against: "Acting on an old sign-in: an app about to do something sensitive can insist on a recent one. The request passes through the browser, so the app should still check auth_time in the ID token (OIDC Core section 3.1.3.7).",
        spec: CORE_AUTH_REQUEST,
    },
    Param {
        name: "login_hint",
        purpose: "A hint about who is about to sign in, such as a username or an email address (OIDC Core section 3.1.2.1). This server uses it to fill in the username field of the sign-in form.",
        protects_against: "Nothing by itself: it is a convenience, and anyone can put any value in it. A server must never treat it as proof of identity; here the user still signs in as usual.",
        spec: CORE_AUTH_REQUEST,
    },
    Param {
        name: "acr_values",
        purpose: "Asks for a level of sign-in, most preferred first (OIDC Core section 3.1.2.1). This server knows two: urn:latchkey:acr:pwd (a password) and urn:latchkey:acr:mfa (a password and a second factor). The level reached comes back in the ID token's acr claim (OIDC Core section 2).",
        protects_against: "Too weak a sign-in for a sensitive app: a request that needs urn:latchkey:acr:mfa makes the server ask for a second factor. The parameter only asks, and it passes through the browser, so the app should check the acr claim it gets back (OIDC Core section 3.1.3.7).",
        spec: CORE_AUTH_REQUEST,
    },
    Param {
        name: "grant_type",
        purpose: "Tells the token endpoint which grant the app uses: authorization_code, refresh_token, client_credentials, password, or urn:ietf:params:oauth:grant-type:device_code (RFC 6749 sections 4.1.3, 4.3.2, 4.4.2 and 6, RFC 8628 section 3.4).",
        protects_against: "Misuse of grants: each client is registered for certain grants only, so a browser app cannot use client_credentials, nor any app the password grant unless registered for it. A grant the client is not registered for gets unauthorized_client (RFC 6749 section 5.2).",
        spec: rfc!("6749", "4.1.3"),
    },
    Param {
        name: "code",
        purpose: "The authorization code the browser brings back. The app sends it to the token endpoint to get tokens (RFC 6749 sections 4.1.2 and 4.1.3). It is short-lived and works once.",
        protects_against: "Code replay: a second use is refused with invalid_grant, and this server revokes the tokens already issued from that code (RFC 6749 sections 4.1.2 and 10.5). A code is also bound to its client, its redirect URI and its PKCE challenge.",
        spec: rfc!("6749", "4.1.2"),
    },
    Param {
        name: "refresh_token",
        purpose: "A longer-lived token that gets new access tokens without asking the user again (RFC 6749 section 1.5). The app keeps it private and sends it only to the token endpoint. A refresh may narrow the scope, never widen it (RFC 6749 section 6).",
        protects_against: "Refresh token theft: this server rotates refresh tokens. Each use returns a new one and retires the old; if a retired one comes back, the server revokes the whole family, which locks out a thief and the real app alike (RFC 9700 section 4.14.2).",
        spec: rfc!("6749", "6"),
    },
    Param {
        name: "device_code",
        purpose: "The device's own handle on a pending device sign-in, from /device/code (RFC 8628 section 3.2). The device polls the token endpoint with it, using grant_type urn:ietf:params:oauth:grant-type:device_code (RFC 8628 section 3.4). The user never sees it.",
        protects_against: "Device code brute forcing: it is long and random, so nobody can guess a pending one and collect its tokens (RFC 8628 section 5.2). Only the device holds it, so the tokens go to the device, never to the page where the user approves.",
        spec: rfc!("8628", "3.4"),
    },
    Param {
        name: "user_code",
        purpose: "The short code the device shows and the user types at /device (RFC 8628 section 3.2). This server makes it 8 letters from a 20-consonant alphabet, as RFC 8628 section 6.1 suggests, shown with a dash in the middle.",
        protects_against: "User code brute forcing: a short code could be guessed, so codes expire and wrong attempts from one address are limited (RFC 8628 section 5.1). Remote phishing: the confirmation page names the app and asks you to check that your device shows the same code (RFC 8628 section 5.4).",
        spec: rfc!("8628", "3.2"),
    },
    Param {
        name: "client_secret",
        purpose: "The password of a confidential client. This server takes it in an HTTP Basic Authorization header (client_id as the user name, the secret as the password, each form-urlencoded first) or in the form body. Basic is the method every server must support (RFC 6749 section 2.3.1).",
        protects_against: "Client impersonation: someone who steals a code or a refresh token cannot redeem it without the secret (RFC 6749 section 10.2). Only an app that runs on a server can keep a secret; a browser or mobile app cannot, and must not be given one (RFC 6749 section 10.1).",
        spec: rfc!("6749", "2.3.1"),
    },
    Param {
        name: "token",
        purpose: "The token to revoke at /revoke, or to ask about at /introspect (RFC 7009 section 2.1, RFC 7662 section 2.1).",
        protects_against: "Token scanning: both endpoints identify the calling client, and introspection needs one that authenticates (RFC 7662 section 4). An app may revoke only its own tokens (RFC 7009 section 2.1). Unknown tokens and other apps' tokens get the same answer as revoked ones, so guessing learns nothing.",
        spec: rfc!("7009", "2.1"),
    },
    Param {
        name: "token_type_hint",
        purpose: "Says whether token is an access_token or a refresh_token (RFC 7009 section 2.1, RFC 7662 section 2.1). It is only a hint: the server searches every type it issues.",
        protects_against: "Nothing by itself: it only speeds up the lookup. A wrong hint changes nothing, because the server searches on (RFC 7662 section 2.1).",
        spec: rfc!("7662", "2.1"),
    },
    Param {
        name: "username",
        purpose: "The user's login name, sent by the app with the password grant (RFC 6749 section 4.3.2).",
        protects_against: "Nothing: this grant hands the user's credentials to the app, which is why RFC 9700 section 2.4 says it must not be used.",
        spec: rfc!("6749", "4.3.2"),
    },
    Param {
        name: "password",
        purpose: "The user's password, sent by the app with the password grant (RFC 6749 section 4.3.2). In every other flow the password goes only to the authorization server's own sign-in page.",
        protects_against: "Nothing: the app sees the password, and users learn to type passwords into apps, which is what phishing needs. It also rules out a second factor or a passkey (RFC 9700 section 2.4).",
        spec: rfc!("6749", "4.3.2"),
    },
    Param {
        name: "iss",
        purpose: "Not sent by the app: the server adds iss, its issuer identifier, to every answer it sends to a redirect URI, success or error (RFC 9207 section 2). The app compares it with the issuer it sent the request to.",
        protects_against: "Mix-up attacks: an app that uses several authorization servers can be tricked into sending a code from one server to another; checking iss catches it (RFC 9700 section 4.4, RFC 9207 section 2.4).",
        spec: rfc!("9207", "2"),
    },
    Param {
        name: "id_token_hint",
        purpose: "An ID token this server issued earlier, sent back as a hint about who is signed in. At /logout it says which user and app the request is about (RP-Initiated Logout section 2). At /authorize, if someone else is signed in, the answer is login_required (OIDC Core section 3.1.2.1).",
        protects_against: "Forced logout: anyone can plant a logout link on a page, which is a form of denial of service (RP-Initiated Logout section 6). This server ends the session at once only for an ID token it signed for the user of this browser's session; otherwise it asks the user to confirm.",
        spec: LOGOUT_REQUEST,
    },
    Param {
        name: "post_logout_redirect_uri",
        purpose: "Where to send the browser after logout. It must exactly match a URI the app registered, and the server adds state to it if the app sent one (RP-Initiated Logout sections 2 and 3).",
        protects_against: "Open redirectors: with loose matching, anyone could use the logout endpoint to bounce users to a phishing page. The server never redirects to an unregistered URI, nor after a logout request that failed its checks (RP-Initiated Logout sections 3 and 4).",
        spec: LOGOUT_REDIRECT,
    },
];

pub const FLOWS: &[Flow] = &[
    Flow {
        slug: "code",
        title: "Authorization code with a client secret",
        summary: "The browser goes to /authorize; the user signs in and allows the app; the server sends the browser back to the app with a short-lived, single-use code (RFC 6749 section 4.1.2). The app's server then redeems the code at /token, authenticating with its client secret, and gets the tokens directly, outside the browser (RFC 6749 section 4.1.3). With the openid scope it also gets an ID token (OIDC Core section 3.1).",
        choose_when: "A web app whose code runs on a server, where the secret stays. Add PKCE as well: RFC 9700 section 2.1.1 recommends it for confidential clients too, and the explorer's web app sends it. Not for single-page or mobile apps: anything shipped to a user's device cannot keep a secret (RFC 6749 section 2.1).",
        spec: rfc!("6749", "4.1"),
        caution: None,
    },
    Flow {
        slug: "code-pkce",
        title: "Authorization code with PKCE",
        summary: "The authorization code flow for apps that cannot keep a secret. For each sign-in the app makes a random code_verifier and sends its SHA-256 hash, the code_challenge, to /authorize (RFC 7636 sections 4.1 to 4.3). To redeem the code it sends the verifier, and the server checks it against the hash (RFC 7636 section 4.6). A stolen code is useless without the verifier, which never appeared in a redirect.",
        choose_when: "Single-page apps, mobile and desktop apps, and any other public client: this server requires PKCE from them (RFC 9700 section 2.1.1). Native apps open the request in the system browser, not an embedded web view (RFC 8252 section 8.12). Server-side apps gain from PKCE too, on top of their secret.",
        spec: rfc!("7636", "4"),
        caution: None,
    },
    Flow {
        slug: "implicit-form-post",
        title: "Implicit flow with form_post, for ID tokens",
        summary: "Sign-in only: with response_type=id_token the server returns an ID token straight from /authorize, with no code and no call to /token (OIDC Core section 3.2). With response_mode=form_post the browser posts it to the app in an HTML form, so it never appears in a URL (OAuth 2.0 Form Post Response Mode section 2). nonce is required (OIDC Core section 3.2.2.1), and the app must validate the ID token (OIDC Core section 3.2.2.11).",
        choose_when: "A server-rendered web app that only needs to know who the user is, and gets no access token. Not for calling APIs, and not for single-page apps: they cannot receive a POST, and should use the code flow with PKCE.",
        spec: CORE_IMPLICIT,
        caution: Some(
            "Use it only for ID tokens, and only with form_post. Access tokens from /authorize leak through URLs and cannot be bound to the app, so RFC 9700 section 2.1.2 says clients should not use response types that return them. This server refuses response_type=token.",
        ),
    },
    Flow {
        slug: "hybrid",
        title: "Hybrid flow (code id_token)",
        summary: "With response_type=code id_token the server returns a code and an ID token together from /authorize (OIDC Core section 3.3). The ID token carries c_hash, a hash of the code, so the app can check that the code belongs to this sign-in before redeeming it (OIDC Core section 3.3.2.11). The app then redeems the code at /token for the access token, as in the code flow. nonce is required (OIDC Core section 3.3.2.1). The answer goes in the fragment by default; the explorer asks for form_post, so nothing travels in a URL.",
        choose_when: "A server-side app that wants the user's identity at once, or that relies on nonce and c_hash against code injection (RFC 9700 section 4.5.3.2). Access tokens still come only from /token, which RFC 9700 section 2.1.2 accepts. Most new apps are simpler with the code flow and PKCE.",
        spec: CORE_HYBRID,
        caution: None,
    },
    Flow {
        slug: "client-credentials",
        title: "Client credentials",
        summary: "No user takes part. A service authenticates at /token with its own client id and secret, sends grant_type=client_credentials, and gets an access token for itself (RFC 6749 section 4.4.2). There is no refresh token: when the access token expires, the service asks again (RFC 6749 section 4.4.3).",
        choose_when: "Backend services, scheduled jobs and daemons that call an API as themselves. Only confidential clients may use it (RFC 6749 section 4.4). Not for acting on behalf of a user: a command-line tool that a person runs should use the device flow or the code flow with PKCE.",
        spec: rfc!("6749", "4.4"),
        caution: None,
    },
    Flow {
        slug: "device",
        title: "Device authorization",
        summary: "For devices with no browser or no easy keyboard. The device asks /device/code for a device_code and a user_code (RFC 8628 section 3.1). It shows the user code and the address /device; the user opens it on a phone or computer, signs in, checks the code and allows the device (RFC 8628 section 3.3). Meanwhile the device polls /token: it gets authorization_pending until then, slow_down if it polls too fast, and its tokens once the user allows it (RFC 8628 section 3.5).",
        choose_when: "TVs, game consoles, printers, and command-line tools on machines without a browser, such as over SSH. Not when the device has a usable browser: the code flow with PKCE is simpler there. Only approve a code you started yourself on a device in front of you (RFC 8628 section 5.4).",
        spec: rfc!("8628", "3"),
        caution: None,
    },
    Flow {
        slug: "password",
        title: "Resource owner password (legacy)",
        summary: "The app collects the user's username and password in its own form and sends them to /token with grant_type=password (RFC 6749 section 4.3). The server checks them and returns tokens. It exists for migrating old apps that stored passwords.",
        choose_when: "No new app. At most an old first-party app during a migration, and even then RFC 9700 section 2.4 says it must not be used. Every app with a user should use the code flow with PKCE, or the device flow.",
        spec: rfc!("6749", "4.3"),
        caution: Some(
            "Legacy: RFC 9700 section 2.4 says this grant MUST NOT be used. The app sees the user's password, users learn to type their password into apps, and the flow cannot include a second factor or a passkey. The explorer runs it only to show why.",
        ),
    },
    Flow {
        slug: "refresh",
        title: "Refresh tokens, with rotation",
        summary: "An access token lives briefly; a refresh token gets new ones without the user (RFC 6749 section 6). By default this server issues one when the app asks for offline_access (OIDC Core section 11) and is allowed the refresh grant. It rotates them: every refresh returns a new refresh token and retires the old one. If a retired one comes back, the server revokes the whole family (RFC 9700 section 4.14.2). A repeat within a brief grace period, such as two tabs racing, gets the same new pair.",
        choose_when: "Any app that needs access after the user has left, or beyond one access token's life. Public clients must use rotation or sender-constrained tokens (RFC 9700 section 2.2.2). Client credentials needs none: the service just asks again.",
        spec: rfc!("6749", "6"),
        caution: None,
    },
    Flow {
        slug: "revocation",
        title: "Token revocation",
        summary: "An app tells the server it no longer needs a token by posting it to /revoke (RFC 7009 section 2.1), for example when the user signs out. Revoking a refresh token here revokes its whole grant, access tokens included. The answer is 200 even for an unknown or already invalid token (RFC 7009 section 2.2).",
        choose_when: "Any app that holds tokens, at sign-out or uninstall. Access tokens here are signed JWTs, so an API that only checks the signature keeps accepting a revoked one until it expires; such an API should use introspection, or rely on short-lived access tokens.",
        spec: rfc!("7009", "2"),
        caution: None,
    },
    Flow {
        slug: "introspection",
        title: "Token introspection",
        summary: "An API posts a token to /introspect and learns whether it is active right now, and for whom and what (RFC 7662 sections 2.1 and 2.2). Access tokens here are JWTs (RFC 9068 section 2) signed with the keys at /jwks.json, so an API can check them itself; introspection adds what a signature cannot show, such as a revocation. Any inactive token gets only active: false, whatever the reason.",
        choose_when: "An API that must notice revocation at once, or that would rather not validate JWTs itself. The caller must authenticate (RFC 7662 section 2.1): a registered resource server may ask about any token, another confidential client only about its own, and a public client not at all.",
        spec: rfc!("7662", "2"),
        caution: None,
    },
    Flow {
        slug: "userinfo",
        title: "UserInfo",
        summary: "An app sends an access token to /userinfo in the Authorization header (RFC 6750 section 2.1) and gets claims about the user: sub, plus those the granted scopes release (OIDC Core sections 5.3 and 5.4). A token without the openid scope gets 403 insufficient_scope; an expired, revoked or altered one gets 401 invalid_token (RFC 6750 section 3.1).",
        choose_when: "An app that needs profile claims beyond those in the ID token, or fresh values. Not a way to decide who signed in: that is the ID token's job, validated as OIDC Core section 3.1.3.7 says. The sub from userinfo must equal the ID token's (OIDC Core section 5.3.2).",
        spec: CORE_USERINFO,
        caution: None,
    },
    Flow {
        slug: "logout",
        title: "RP-initiated logout",
        summary: "The app sends the browser to /logout with id_token_hint, and optionally post_logout_redirect_uri and state (RP-Initiated Logout section 2). The server ends the user's session there and, if the URI is registered, sends the browser back to the app with its state (RP-Initiated Logout section 3). Without a valid hint for this browser's user, the server asks the user to confirm first (RP-Initiated Logout section 6).",
        choose_when: "Any app that signs users in with OpenID Connect and has a sign-out button. Ending only the app's own session leaves the server's session alive, and the next sign-in goes through without a password.",
        spec: LOGOUT_REQUEST,
        caution: None,
    },
];

pub const QUESTIONS: &[Question] = &[
    Question {
        slug: "what-is-oauth",
        title: "What is OAuth?",
        paragraphs: &[
            "OAuth 2.0 lets an app get limited access to an HTTP service on behalf of a user, without the user giving the app their password. The app gets an access token from an authorization server and shows it to the API (RFC 6749 section 1). The RFC's own example: a printing service prints your photos from a photo-sharing site, and never learns your password there.",
            "There are four roles: the resource owner (the user), the client (the app), the authorization server (here, Latchkey), and the resource server (the API) (RFC 6749 section 1.1). The client says what it wants as scopes, the user approves on the authorization server's own page, and the token carries only what was approved.",
            "A common mix-up: older notes describe request tokens, token secrets, and the user handing tokens from site to site. That is OAuth 1.0 (RFC 5849). OAuth 2.0 has none of that. In the code flow, the browser carries only a short-lived code, and the app exchanges it for tokens directly with the server (RFC 6749 section 4.1).",
            "Another: an access token is not proof of who the user is. It says what the app may do at an API. Signing users in is what OpenID Connect adds on top.",
        ],
        try_flows: &["code-pkce", "client-credentials"],
        specs: &[rfc!("6749", "1"), rfc!("6749", "1.1"), rfc!("6749", "4.1")],
    },
    Question {
        slug: "what-does-openid-add",
        title: "What does OpenID Connect add?",
        paragraphs: &[
            "OpenID Connect (OIDC) is an identity layer on top of OAuth 2.0: it lets an app learn who signed in, and how (OIDC Core section 1). It is not the older OpenID (versions 1 and 2) that began with LiveJournal blog logins: that was a different protocol.",
            "Its core is the ID token: a signed JWT for the app itself, with the issuer (iss), the user's stable identifier (sub), the app it is for (aud), when it expires (exp), and the nonce the app sent, if any (OIDC Core section 2). The app checks iss, aud, exp and nonce before it trusts it, and the signature too unless the token came straight from the token endpoint over TLS (OIDC Core section 3.1.3.7).",
            "An app asks for OIDC by adding openid to the scope. OIDC also defines the UserInfo endpoint for profile claims (OIDC Core section 5.3), a discovery document, here at /.well-known/openid-configuration (OIDC Discovery section 4), and logout (RP-Initiated Logout section 2). This server's signing keys are at /jwks.json.",
            "Keep the two tokens apart: the ID token is for the app and says who signed in; the access token is for the API and says what the app may do.",
        ],
        try_flows: &["code-pkce", "hybrid", "userinfo", "logout"],
        specs: &[
            CORE_INTRO,
            CORE_ID_TOKEN,
            CORE_ID_TOKEN_VALIDATION,
            CORE_USERINFO,
            DISCOVERY,
        ],
    },
    Question {
        slug: "authentication-vs-authorization",
        title: "Authentication or authorization?",
        paragraphs: &[
            "Authentication proves who someone is. Authorization decides what they, or an app acting for them, may do. On this server the sign-in page (password, second factor, passkey) is authentication; the consent page, where you allow an app some scopes, is authorization.",
            "OAuth 2.0 is about authorization: its access token tells an API what the app may do (RFC 6749 section 1). Using an access token as proof of sign-in is a known mistake: an attacker who holds a token the user granted to some other app can hand it to yours, and your app would take the attacker for that user (RFC 6749 section 10.16).",
            "OpenID Connect adds authentication. Its ID token names your app as its audience and carries your nonce, so it cannot be replayed from another app or another sign-in (OIDC Core sections 2 and 3.1.3.7).",
        ],
        try_flows: &["code-pkce", "userinfo", "introspection"],
        specs: &[
            rfc!("6749", "1"),
            rfc!("6749", "10.16"),
            CORE_ID_TOKEN,
            CORE_ID_TOKEN_VALIDATION,
        ],
    },
    Question {
        slug: "which-flow",
        title: "Which flow should my app use?",
        paragraphs: &[
            "A server-side web app can keep a secret, so it uses the authorization code flow with its client secret, and PKCE as well (RFC 6749 section 4.1, RFC 9700 section 2.1.1).",
            "A single-page app runs in the browser and cannot keep a secret. It uses the authorization code flow with PKCE and no secret; its refresh tokens must rotate or be sender-constrained (RFC 9700 sections 2.1.1 and 2.2.2).",
            "A mobile or desktop app is a public client too: code flow with PKCE (RFC 8252 section 6). It opens the request in the system browser, never an embedded web view, which would let the app read the password (RFC 8252 section 8.12). It gets the answer on a private-use URI scheme, a claimed https URL, or a loopback address such as http://127.0.0.1, where any port is allowed (RFC 8252 sections 7.1 to 7.3).",
            "A service calling an API as itself, with no user, uses client credentials (RFC 6749 section 4.4). A TV, a console or a command-line tool without a browser uses the device flow (RFC 8628 section 3).",
            "Not the implicit flow for access tokens: tokens in URLs leak through history, logs and Referer headers, and RFC 9700 section 2.1.2 says not to use it. Implicit with form_post for an ID token alone is still fine for sign-in. Not the password grant: the app sees the password, and RFC 9700 section 2.4 says it must not be used.",
        ],
        try_flows: &[
            "code",
            "code-pkce",
            "client-credentials",
            "device",
            "implicit-form-post",
        ],
        specs: &[
            rfc!("9700", "2.1.1"),
            rfc!("8252", "6"),
            rfc!("8252", "8.12"),
            rfc!("6749", "4.4"),
            rfc!("8628", "3"),
            rfc!("9700", "2.1.2"),
            rfc!("9700", "2.4"),
        ],
    },
];

pub const BREAKAGES: &[Breakage] = &[
    Breakage {
        slug: "replay-code",
        title: "Redeem the same code twice",
        flow: "code-pkce",
        expect_error: "400 invalid_grant",
        why: "A code works once. On a second use the server must refuse, and should revoke the tokens already issued from that code (RFC 6749 section 4.1.2); this server does, so the tokens from the first redemption stop working too. A repeated code means someone else may hold it, such as an attacker who read it from a log (RFC 6749 section 10.5).",
        spec: rfc!("6749", "4.1.2"),
    },
    Breakage {
        slug: "wrong-verifier",
        title: "Redeem the code with the wrong code_verifier",
        flow: "code-pkce",
        expect_error: "400 invalid_grant",
        why: "The server hashes the code_verifier and compares it with the code_challenge it stored with the code; if they differ it must refuse (RFC 7636 section 4.6). This is what makes a stolen code useless: an attacker who intercepts the code does not have the verifier.",
        spec: rfc!("7636", "4.6"),
    },
    Breakage {
        slug: "no-challenge",
        title: "A public client leaves out PKCE",
        flow: "code-pkce",
        expect_error: "invalid_request, sent back to the redirect URI",
        why: "Public clients must use PKCE (RFC 9700 section 2.1.1), and this server requires it from them. A server that requires PKCE answers a request without code_challenge with invalid_request (RFC 7636 section 4.4.1). Without PKCE, an intercepted or injected code could be redeemed by anyone.",
        spec: rfc!("9700", "2.1.1"),
    },
    Breakage {
        slug: "unregistered-redirect",
        title: "Ask to be sent back to an unregistered redirect URI",
        flow: "code-pkce",
        expect_error: "An error page at the server; the browser is never redirected",
        why: "If the redirect URI is missing, invalid or not registered, the server must tell the user and must not redirect to it (RFC 6749 sections 4.1.2.1 and 3.1.2.4). Otherwise anyone could use the server as an open redirector, or have codes sent to an address they control (RFC 9700 section 4.1).",
        spec: rfc!("6749", "4.1.2.1"),
    },
    Breakage {
        slug: "reuse-refresh",
        title: "Use a rotated refresh token again",
        flow: "refresh",
        expect_error: "400 invalid_grant, and the whole token family revoked",
        why: "With rotation, each refresh retires the old token. If a retired one comes back, two parties hold it, and one may be a thief. The server cannot tell which, so it revokes the whole family, and the real app must sign the user in again (RFC 9700 section 4.14.2). A repeat within the brief grace period for racing requests gets the same new pair instead.",
        spec: rfc!("9700", "4.14.2"),
    },
    Breakage {
        slug: "poll-too-fast",
        title: "Poll the token endpoint faster than the interval",
        flow: "device",
        expect_error: "400 slow_down",
        why: "The device must wait at least the interval between polls. On slow_down it must add 5 seconds to the interval for this and every later request (RFC 8628 section 3.5). This keeps many waiting devices from flooding the server.",
        spec: rfc!("8628", "3.5"),
    },
    Breakage {
        slug: "wrong-secret",
        title: "Client credentials with a wrong secret",
        flow: "client-credentials",
        expect_error: "401 invalid_client, with WWW-Authenticate: Basic realm=\"latchkey\"",
        why: "Client authentication failed. When the client tried the Authorization header, the server must answer 401 with a WWW-Authenticate header for the scheme it used (RFC 6749 section 5.2). The answer does not say whether the client or the secret was wrong, so it helps nobody guess.",
        spec: rfc!("6749", "5.2"),
    },
    Breakage {
        slug: "bad-token-userinfo",
        title: "Call UserInfo with an altered access token",
        flow: "userinfo",
        expect_error: "401 invalid_token, with WWW-Authenticate: Bearer realm=\"latchkey\", error=\"invalid_token\"",
        why: "A token that is expired, revoked, malformed or not validly signed is invalid_token, with status 401 (RFC 6750 section 3.1), and the Bearer challenge names the error (RFC 6750 section 3). An expired or revoked token gets the same answer. The app may get a new access token, for example with its refresh token, and try again.",
        spec: rfc!("6750", "3.1"),
    },
];

pub fn param(name: &str) -> Option<&'static Param> {
    PARAMS.iter().find(|p| p.name == name)
}

pub fn flow(slug: &str) -> Option<&'static Flow> {
    FLOWS.iter().find(|f| f.slug == slug)
}

pub fn question(slug: &str) -> Option<&'static Question> {
    QUESTIONS.iter().find(|q| q.slug == slug)
}

pub fn breakage(slug: &str) -> Option<&'static Breakage> {
    BREAKAGES.iter().find(|b| b.slug == slug)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn kebab(s: &str) -> bool {
        !s.is_empty()
            && !s.starts_with('-')
            && !s.ends_with('-')
            && !s.contains("--")
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    }

    fn specs() -> Vec<Spec> {
        let mut out: Vec<Spec> = PARAMS.iter().map(|p| p.spec).collect();
        out.extend(FLOWS.iter().map(|f| f.spec));
        out.extend(QUESTIONS.iter().flat_map(|q| q.specs.iter().copied()));
        out.extend(BREAKAGES.iter().map(|b| b.spec));
        out
    }

    /// Every piece of text a learner reads, with where it comes from.
    fn texts() -> Vec<(String, &'static str)> {
        let mut out = Vec::new();
        for p in PARAMS {
            out.push((format!("param {}", p.name), p.name));
            out.push((format!("param {} purpose", p.name), p.purpose));
            out.push((format!("param {} protects", p.name), p.protects_against));
        }
        for f in FLOWS {
            for (what, t) in [
                ("slug", f.slug),
                ("title", f.title),
                ("summary", f.summary),
                ("choose_when", f.choose_when),
            ] {
                out.push((format!("flow {} {what}", f.slug), t));
            }
            if let Some(c) = f.caution {
                out.push((format!("flow {} caution", f.slug), c));
            }
        }
        for q in QUESTIONS {
            out.push((format!("question {}", q.slug), q.slug));
            out.push((format!("question {} title", q.slug), q.title));
            for (i, p) in q.paragraphs.iter().enumerate() {
                out.push((format!("question {} paragraph {i}", q.slug), p));
            }
        }
        for b in BREAKAGES {
            for (what, t) in [
                ("slug", b.slug),
                ("title", b.title),
                ("flow", b.flow),
                ("expect_error", b.expect_error),
                ("why", b.why),
            ] {
                out.push((format!("breakage {} {what}", b.slug), t));
            }
        }
        for s in specs() {
            out.push((format!("spec {}", s.url), s.label));
            out.push((format!("spec {}", s.label), s.url));
        }
        out
    }

    #[test]
    fn slugs_are_unique_lowercase_kebab() {
        let groups: [(&str, Vec<&str>); 3] = [
            ("flow", FLOWS.iter().map(|f| f.slug).collect()),
            ("question", QUESTIONS.iter().map(|q| q.slug).collect()),
            ("breakage", BREAKAGES.iter().map(|b| b.slug).collect()),
        ];
        for (kind, slugs) in groups {
            let mut seen = HashSet::new();
            for s in slugs {
                assert!(kebab(s), "{kind} slug {s:?} is not lowercase kebab-case");
                assert!(seen.insert(s), "{kind} slug {s:?} is repeated");
            }
        }
        let mut names = HashSet::new();
        for p in PARAMS {
            assert!(names.insert(p.name), "param {:?} is repeated", p.name);
        }
    }

    #[test]
    fn the_required_entries_are_all_there() {
        for name in [
            "response_type",
            "client_id",
            "redirect_uri",
            "scope",
            "state",
            "nonce",
            "code_challenge",
            "code_challenge_method",
            "code_verifier",
            "response_mode",
            "prompt",
            "max_age",
            "login_hint",
            "acr_values",
            "grant_type",
            "code",
            "refresh_token",
            "device_code",
            "client_secret",
            "token",
            "id_token_hint",
            "post_logout_redirect_uri",
        ] {
            assert!(param(name).is_some(), "param {name}");
        }
        let flows: Vec<&str> = FLOWS.iter().map(|f| f.slug).collect();
        assert_eq!(
            flows,
            [
                "code",
                "code-pkce",
                "implicit-form-post",
                "hybrid",
                "client-credentials",
                "device",
                "password",
                "refresh",
                "revocation",
                "introspection",
                "userinfo",
                "logout",
            ]
        );
        for slug in [
            "what-is-oauth",
            "what-does-openid-add",
            "authentication-vs-authorization",
            "which-flow",
        ] {
            assert!(question(slug).is_some(), "question {slug}");
        }
        for slug in [
            "replay-code",
            "wrong-verifier",
            "no-challenge",
            "unregistered-redirect",
            "reuse-refresh",
            "poll-too-fast",
            "wrong-secret",
            "bad-token-userinfo",
        ] {
            assert!(breakage(slug).is_some(), "breakage {slug}");
        }
    }

    #[test]
    fn flow_references_name_flows() {
        for q in QUESTIONS {
            assert!(
                !q.try_flows.is_empty(),
                "question {} offers no flow",
                q.slug
            );
            for f in q.try_flows {
                assert!(flow(f).is_some(), "question {}: no flow {f:?}", q.slug);
            }
            assert!(!q.paragraphs.is_empty(), "question {} has no text", q.slug);
            assert!(!q.specs.is_empty(), "question {} cites nothing", q.slug);
        }
        for b in BREAKAGES {
            assert!(
                flow(b.flow).is_some(),
                "breakage {}: no flow {:?}",
                b.slug,
                b.flow
            );
        }
    }

    #[test]
    fn every_link_is_https_to_a_section_anchor() {
        for s in specs() {
            assert!(s.url.starts_with("https://"), "{}: {}", s.label, s.url);
            let anchor = s.url.split_once('#').map(|(_, a)| a).unwrap_or_default();
            assert!(!anchor.is_empty(), "{}: no anchor in {}", s.label, s.url);
            assert!(
                s.label.contains(" section "),
                "{}: names no section",
                s.label
            );
        }
    }

    #[test]
    fn rfc_labels_name_the_section_they_link() {
        for s in specs() {
            let Some(rest) = s.label.strip_prefix("RFC ") else {
                continue;
            };
            let (n, section) = rest.split_once(" section ").unwrap_or_default();
            assert_eq!(
                s.url,
                format!("https://www.rfc-editor.org/rfc/rfc{n}#section-{section}"),
                "{}",
                s.label
            );
        }
    }

    /// OpenID anchors are names, not numbers: each one used here, with the section it
    /// opens, as read from the specs' sources.
    #[test]
    fn openid_anchors_open_the_section_their_label_names() {
        const KNOWN: &[(&str, &str, &str)] = &[
            ("openid-connect-core-1_0", "Introduction", "1"),
            ("openid-connect-core-1_0", "IDToken", "2"),
            ("openid-connect-core-1_0", "AuthRequest", "3.1.2.1"),
            ("openid-connect-core-1_0", "IDTokenValidation", "3.1.3.7"),
            ("openid-connect-core-1_0", "ImplicitFlowAuth", "3.2"),
            ("openid-connect-core-1_0", "HybridFlowAuth", "3.3"),
            ("openid-connect-core-1_0", "UserInfo", "5.3"),
            (
                "oauth-v2-multiple-response-types-1_0",
                "ResponseModes",
                "2.1",
            ),
            ("openid-connect-discovery-1_0", "ProviderConfig", "4"),
            ("openid-connect-rpinitiated-1_0", "RPLogout", "2"),
            (
                "openid-connect-rpinitiated-1_0",
                "RedirectionAfterLogout",
                "3",
            ),
        ];
        for s in specs() {
            let Some(rest) = s.url.strip_prefix("https://openid.net/specs/") else {
                continue;
            };
            let (file, anchor) = rest.split_once(".html#").unwrap_or_default();
            let section = s.label.rsplit(" section ").next().unwrap_or_default();
            assert!(
                KNOWN.contains(&(file, anchor, section)),
                "{} -> {}: not a known anchor for that section",
                s.label,
                s.url
            );
        }
    }

    #[test]
    fn no_text_is_empty_and_none_uses_the_section_sign() {
        for (what, t) in texts() {
            assert!(!t.trim().is_empty(), "{what} is empty");
            assert!(!t.contains('\u{a7}'), "{what} uses the section sign");
            assert!(t.is_ascii(), "{what} is not plain ASCII: {t}");
            assert_eq!(t, t.trim(), "{what} has stray whitespace");
        }
    }

    #[test]
    fn cautions_mark_the_discouraged_flows() {
        let cautioned: Vec<&str> = FLOWS
            .iter()
            .filter(|f| f.caution.is_some())
            .map(|f| f.slug)
            .collect();
        assert_eq!(cautioned, ["implicit-form-post", "password"]);
        let password = flow("password").and_then(|f| f.caution).unwrap_or_default();
        assert!(password.contains("RFC 9700 section 2.4"), "{password}");
        let implicit = flow("implicit-form-post")
            .and_then(|f| f.caution)
            .unwrap_or_default();
        assert!(implicit.contains("form_post"), "{implicit}");
    }

    #[test]
    fn lookups_find_each_entry_and_nothing_else() {
        for p in PARAMS {
            assert_eq!(param(p.name).map(|x| x.name), Some(p.name));
        }
        for f in FLOWS {
            assert_eq!(flow(f.slug).map(|x| x.slug), Some(f.slug));
        }
        for q in QUESTIONS {
            assert_eq!(question(q.slug).map(|x| x.slug), Some(q.slug));
        }
        for b in BREAKAGES {
            assert_eq!(breakage(b.slug).map(|x| x.slug), Some(b.slug));
        }
        assert!(param("Response_Type").is_none());
        assert!(flow("implicit").is_none());
        assert!(question("").is_none());
        assert!(breakage("refresh-reuse").is_none());
    }
}
