//! The OpenAPI 3.1 document's frame; the paths come from the handlers' annotations, except the
//! few routes that are not ordinary JSON handlers, described here by hand: `/openapi.json`
//! itself and the plugins' own HTTP handlers under `/p/{tenant}/{plugin}`.

use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, Required, ResponseBuilder};
use utoipa::{Modify, OpenApi};

/// The path of the document (the route is added in [`super::router`]).
const DOCUMENT_PATH: &str = "/openapi.json";

/// The two routes of a plugin's HTTP handler (axum's spelling of the wildcard; the routes are
/// added in [`crate::plugin_http`]).
const PLUGIN_HTTP_PATHS: [&str; 2] = ["/p/{tenant}/{plugin}", "/p/{tenant}/{plugin}/{*path}"];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Plinth marketplace API",
        description = "Accounts, tenants and plans, publishers, submissions, review, the catalog, installs, \
            events, ratings, versions, notifications, the audit log and the revenue ledger. \
            Errors are `{\"error\":{\"code\",\"message\"}}`; authenticate with `Authorization: Bearer <token>`."
    ),
    components(schemas(crate::error::ApiError)),
    modifiers(&BearerAuth, &HandWritten)
)]
struct ApiDoc;

/// Declares the bearer-token scheme the handlers' `security` refers to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Adds the routes that have no `#[utoipa::path]` handler.
struct HandWritten;

impl Modify for HandWritten {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let document = OperationBuilder::new()
            .tag("operations")
            .summary(Some("This document"))
            .response(
                "200",
                ResponseBuilder::new()
                    .description("The OpenAPI 3.1 document of every route")
                    .content("application/json", ContentBuilder::new().build()),
            )
            .build();
        openapi.paths.paths.insert(
            DOCUMENT_PATH.to_owned(),
            PathItem::new(HttpMethod::Get, document),
        );

        let methods = [
            HttpMethod::Get,
            HttpMethod::Post,
            HttpMethod::Put,
            HttpMethod::Patch,
            HttpMethod::Delete,
        ];
        for path in PLUGIN_HTTP_PATHS {
            let with_rest = path.ends_with("{*path}");
            let mut operation = plugin_http_operation();
            if with_rest {
                operation = operation.parameter(path_parameter(
                    "path",
                    "The rest of the path, which the plugin sees (with the query)",
                ));
            }
            openapi.paths.paths.insert(
                openapi_spelling(path),
                PathItem::from_http_methods(methods.clone(), operation.build()),
            );
        }
    }
}

/// An operation of a plugin's HTTP handler (any method).
fn plugin_http_operation() -> OperationBuilder {
    let error = |description: &str| {
        ResponseBuilder::new().description(description).content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ApiError")))
                .build(),
        )
    };
    OperationBuilder::new()
        .tag("plugin-http")
        .summary(Some("A request served by the install's wasi:http handler"))
        .description(Some(
            "Authenticate with the tenant's API key or a member's token. The plugin sees the \
             method, the path below `/p/{tenant}/{plugin}` with the query, the headers without \
             `authorization` and `cookie`, and the body (at most 1 MiB); its response is \
             returned as it is.",
        ))
        .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
        .parameter(path_parameter("tenant", "Tenant slug"))
        .parameter(path_parameter("plugin", "Plugin id"))
        .response(
            "200",
            ResponseBuilder::new().description("The plugin's response, whatever its status"),
        )
        .response("401", error("No or an unknown credential"))
        .response("404", error("No such install for this tenant"))
        .response("413", error("The request body is larger than 1 MiB"))
        .response(
            "501",
            error("`not_serving_http`: the plugin exports no HTTP handler"),
        )
        .response(
            "502",
            error("The call failed: `trap`, `timeout`, `output_too_large`, …"),
        )
}

/// A required string path parameter.
fn path_parameter(name: &str, description: &str) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String),
        ))
        .build()
}

/// An axum route path in OpenAPI's spelling: `{*rest}` becomes `{rest}`.
fn openapi_spelling(path: &str) -> String {
    path.replace("{*", "{")
}

/// The document the routes are merged into.
pub(crate) fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
