//! Calls through installs: an event dispatched to a tenant's subscribed installs and onward to
//! what they emit, within the event's [`EventBudget`]; a request served by an install's HTTP
//! handler. What each call leaves behind is [`accounting`](super::accounting)'s.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::Instrument as _;

use super::accounting::circuit_open;
use super::table::Install;
use crate::breaker::Admission;
use crate::budget::{EventBudget, QuotaGrant, Spent};
use crate::error::{Error, InvokeError};
use crate::invoke::{Entry, Event, HttpExchange, Invocation, Metered};
use crate::runs::RunEntry;
use crate::runtime::{Host, lock};

/// One plugin's result for a dispatched event.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The plugin id.
    pub plugin: String,
    /// The version that handled it.
    pub version: String,
    /// The topic delivered (an emitted event's topic for onward deliveries).
    pub topic: String,
    /// 0 for the dispatched event, more for events plugins emitted onward.
    pub depth: u32,
    /// How the call ended.
    pub invocation: Invocation,
}

/// How a plugin served an HTTP request.
#[derive(Debug)]
pub struct HttpServed {
    /// The version that served it.
    pub version: String,
    /// The plugin's response, or why the call failed.
    pub response: Result<http::Response<Bytes>, InvokeError>,
    /// The call's logs and usage (its `result` carries no output for HTTP calls).
    pub invocation: Invocation,
}

/// A delivery the cascade did not make.
struct Skipped {
    plugin: String,
    version: String,
    topic: String,
    depth: u32,
}

impl Host {
    /// Serves an HTTP request with the plugin's `wasi:http/incoming-handler` under the
    /// install's grant, config and limits (the response body counts against the output
    /// limit). The request's path is what the plugin sees: routing prefixes already removed.
    /// The call is metered, and counted against `quota` when given.
    ///
    /// # Errors
    ///
    /// [`Error::NotInstalled`] if the tenant has no enabled install of the plugin;
    /// [`Error::NotServingHttp`] if the plugin exports no HTTP handler. How the call itself
    /// ended (refusals included) is in [`HttpServed::response`].
    pub async fn serve_http(
        &self,
        tenant: &str,
        plugin: &str,
        request: http::Request<Bytes>,
        quota: Option<QuotaGrant>,
    ) -> Result<HttpServed, Error> {
        let install = self.find(tenant, plugin)?;
        if !install.enabled.load(Ordering::SeqCst) {
            return Err(Error::NotInstalled {
                tenant: tenant.to_string(),
                plugin: plugin.to_string(),
            });
        }
        let deployment = install.current.load_full();
        if !deployment.prepared.serves_http() {
            return Err(Error::NotServingHttp {
                plugin: deployment.prepared.plugin.label(),
            });
        }
        let version = deployment.version();
        let entry = RunEntry::Http {
            method: request.method().to_string(),
            path: request.uri().path().to_string(),
        };
        // The body is reference-counted: kept for capture without a copy.
        let body = request.body().clone();
        let admission = lock(&install.breaker).admit(Instant::now());
        let (mut invocation, response) = match admission {
            Admission::Refused { retry_after } => (
                Invocation::failed(circuit_open(retry_after), Instant::now()),
                None,
            ),
            Admission::Allowed | Admission::Trial => {
                let exchange = HttpExchange {
                    request: Some(with_host_header(request)),
                    response: None,
                };
                let call = Entry::Http(Box::new(exchange));
                let ran = self
                    .run(deployment.call(tenant, 0, call, Some(Metered { quota })))
                    .await;
                self.account(tenant, plugin, &install, &version, &ran.invocation)
                    .await;
                (ran.invocation, ran.response)
            }
        };
        self.record_run(
            (tenant, plugin, &version),
            || entry,
            &deployment.spec.runs,
            &mut invocation,
            &body,
            response.as_ref().map(|response| response.body().as_ref()),
        );
        let response = match (invocation.result.clone(), response) {
            (Ok(_), Some(response)) => Ok(response),
            (Ok(_), None) => Err(InvokeError::Internal(
                "the plugin's HTTP handler sent no response".to_string(),
            )),
            (Err(error), _) => Err(error),
        };
        Ok(HttpServed {
            version,
            response,
            invocation,
        })
    }

    /// Delivers `event` to every enabled install of `tenant` subscribed to its topic,
    /// concurrently (bounded), and then the events those plugins emitted, depth by depth,
    /// within `budget`. One plugin's failure never fails the others; every delivery's result
    /// is returned. When the budget (or the tenant's monthly quota) runs out the cascade ends,
    /// and one last entry says why and how many deliveries were not made.
    pub async fn dispatch(
        self: &Arc<Self>,
        tenant: &str,
        event: Event,
        budget: &Arc<EventBudget>,
    ) -> Vec<Delivery> {
        let mut deliveries = Vec::new();
        let mut queue = VecDeque::from([event]);
        let mut first_skipped: Option<Skipped> = None;
        let mut skipped: u64 = 0;
        let mut stop: Option<InvokeError> = None;
        while let Some(event) = queue.pop_front() {
            if stop.is_some() {
                for (plugin, install) in self.targets(tenant, &event.topic) {
                    skipped += 1;
                    first_skipped.get_or_insert_with(|| Skipped {
                        plugin,
                        version: install.current.load().version(),
                        topic: event.topic.clone(),
                        depth: event.depth,
                    });
                }
                continue;
            }
            let targets = self.targets(tenant, &event.topic);
            let (results, refused) = self.deliver(tenant, &event, targets, budget).await;
            if !refused.is_empty() {
                stop.get_or_insert(budget_exhausted(Spent::Invocations(
                    budget.max_invocations(),
                )));
            }
            for not_made in refused {
                skipped += 1;
                first_skipped.get_or_insert(not_made);
            }
            for mut delivery in results {
                if let Err(InvokeError::QuotaExceeded { used, limit }) = &delivery.invocation.result
                {
                    stop.get_or_insert(InvokeError::QuotaExceeded {
                        used: *used,
                        limit: *limit,
                    });
                }
                if let Err(spent) = budget.charge_bytes(result_bytes(&delivery.invocation)) {
                    let error = budget_exhausted(spent);
                    delivery.invocation.result = Err(error.clone());
                    delivery.invocation.emitted.clear();
                    stop.get_or_insert(error);
                }
                // The emitted payloads move on to the queue; the delivery keeps its topics.
                let emitted = std::mem::take(&mut delivery.invocation.emitted);
                for (index, mut emitted) in emitted.into_iter().enumerate() {
                    queue.push_back(Event {
                        id: format!("{}/{}/{index}", event.id, delivery.plugin),
                        topic: emitted.topic.clone(),
                        payload: std::mem::take(&mut emitted.payload),
                        depth: emitted.depth,
                    });
                    delivery.invocation.emitted.push(emitted);
                }
                deliveries.push(delivery);
            }
        }
        if let Some(stop) = stop.filter(|_| skipped > 0) {
            budget.exhaust();
            let error = match stop {
                InvokeError::EventBudgetExhausted { budget, .. } => {
                    InvokeError::EventBudgetExhausted { budget, skipped }
                }
                other => other,
            };
            tracing::info!(
                tenant,
                skipped,
                code = error.code(),
                "event cascade ended early"
            );
            let first = first_skipped.unwrap_or(Skipped {
                plugin: String::new(),
                version: String::new(),
                topic: String::new(),
                depth: 0,
            });
            deliveries.push(Delivery {
                plugin: first.plugin,
                version: first.version,
                topic: first.topic,
                depth: first.depth,
                invocation: Invocation::failed(error, Instant::now()),
            });
        }
        deliveries
    }

    /// The plugins of `tenant`'s enabled installs subscribed to `topic`, sorted: who one hop of
    /// an event with that topic reaches.
    pub fn subscribers(&self, tenant: &str, topic: &str) -> Vec<String> {
        self.targets(tenant, topic)
            .into_iter()
            .map(|(plugin, _)| plugin)
            .collect()
    }

    /// Delivers `event` to each of `plugins` (one hop: what they emit comes back in each
    /// delivery's [`Invocation::emitted`] and is not delivered), concurrently (bounded), each
    /// call counted against `quota` when given. A plugin without an enabled install of
    /// `tenant` gets no delivery: the caller sees it missing from the result. Subscription is
    /// not checked: the caller chose the plugins (a schedule reaches its own install).
    pub async fn deliver_hop(
        self: &Arc<Self>,
        tenant: &str,
        event: &Event,
        plugins: &[String],
        quota: Option<QuotaGrant>,
    ) -> Vec<Delivery> {
        let targets: Vec<(String, Arc<Install>)> = {
            let table = self.installs.read().unwrap_or_else(PoisonError::into_inner);
            let installs = table.get(tenant);
            plugins
                .iter()
                .filter_map(|plugin| {
                    let install = installs?.get(plugin)?;
                    install
                        .enabled
                        .load(Ordering::SeqCst)
                        .then(|| (plugin.clone(), Arc::clone(install)))
                })
                .collect()
        };
        let invocations = u32::try_from(targets.len()).unwrap_or(u32::MAX);
        let mut budget = EventBudget::new(invocations);
        if let Some(quota) = quota {
            budget = budget.with_quota(quota);
        }
        let (deliveries, _) = self
            .deliver(tenant, event, targets, &Arc::new(budget))
            .await;
        deliveries
    }

    /// The enabled installs of `tenant` subscribed to `topic`, sorted by plugin id.
    fn targets(&self, tenant: &str, topic: &str) -> Vec<(String, Arc<Install>)> {
        let table = self.installs.read().unwrap_or_else(PoisonError::into_inner);
        let mut targets: Vec<_> = table
            .get(tenant)
            .into_iter()
            .flatten()
            .filter(|(_, install)| install.enabled.load(Ordering::SeqCst))
            .filter(|(_, install)| {
                install
                    .current
                    .load()
                    .prepared
                    .plugin
                    .manifest
                    .permissions
                    .subscribes(topic)
            })
            .map(|(id, install)| (id.clone(), Arc::clone(install)))
            .collect();
        targets.sort_by(|a, b| a.0.cmp(&b.0));
        targets
    }

    /// Delivers one event to `targets`, concurrently; returns the deliveries made and those
    /// the budget did not allow.
    async fn deliver(
        self: &Arc<Self>,
        tenant: &str,
        event: &Event,
        targets: Vec<(String, Arc<Install>)>,
        budget: &Arc<EventBudget>,
    ) -> (Vec<Delivery>, Vec<Skipped>) {
        let semaphore = Arc::new(Semaphore::new(
            self.policies.max_concurrent_deliveries.max(1),
        ));
        let mut tasks = JoinSet::new();
        let mut refused = Vec::new();
        for (index, (plugin, install)) in targets.into_iter().enumerate() {
            if budget.take_invocation().is_err() {
                refused.push(Skipped {
                    plugin,
                    version: install.current.load().version(),
                    topic: event.topic.clone(),
                    depth: event.depth,
                });
                continue;
            }
            let host = Arc::clone(self);
            let semaphore = Arc::clone(&semaphore);
            let tenant = tenant.to_string();
            let event = event.clone();
            let budget = Arc::clone(budget);
            // In the caller's span (the request's), so the call's logs carry its id.
            tasks.spawn(
                async move {
                    // The semaphore is never closed, so acquiring can only wait.
                    let _permit = semaphore.acquire_owned().await.ok();
                    let delivery = host
                        .deliver_to(&tenant, &plugin, &install, &event, budget.quota().copied())
                        .await;
                    if delivery
                        .invocation
                        .result
                        .as_ref()
                        .is_err_and(InvokeError::is_refusal)
                    {
                        budget.return_invocation();
                    }
                    (index, delivery)
                }
                .in_current_span(),
            );
        }
        let mut deliveries: Vec<(usize, Delivery)> = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(delivery) => deliveries.push(delivery),
                // A delivery task only ends abnormally if the host itself panicked.
                Err(error) => tracing::error!(%error, "a delivery task failed"),
            }
        }
        deliveries.sort_by_key(|(index, _)| *index);
        (
            deliveries
                .into_iter()
                .map(|(_, delivery)| delivery)
                .collect(),
            refused,
        )
    }

    /// One delivery: breaker, call (capacity, quota, metering), breaker and rollout
    /// bookkeeping.
    async fn deliver_to(
        &self,
        tenant: &str,
        plugin: &str,
        install: &Install,
        event: &Event,
        quota: Option<QuotaGrant>,
    ) -> Delivery {
        let deployment = install.current.load_full();
        let version = deployment.version();
        let admission = lock(&install.breaker).admit(Instant::now());
        let mut invocation = match admission {
            Admission::Refused { retry_after } => {
                Invocation::failed(circuit_open(retry_after), Instant::now())
            }
            Admission::Allowed | Admission::Trial => {
                let entry = Entry::Event(crate::bindings::types::Event {
                    id: event.id.clone(),
                    topic: event.topic.clone(),
                    payload: event.payload.clone(),
                    tenant: tenant.to_string(),
                    depth: event.depth,
                });
                let call = deployment.call(tenant, event.depth, entry, Some(Metered { quota }));
                self.run(call).await.invocation
            }
        };
        self.account(tenant, plugin, install, &version, &invocation)
            .await;
        self.record_run(
            (tenant, plugin, &version),
            || RunEntry::Event {
                id: event.id.clone(),
                topic: event.topic.clone(),
                depth: event.depth,
            },
            &deployment.spec.runs,
            &mut invocation,
            &event.payload,
            None,
        );
        Delivery {
            plugin: plugin.to_string(),
            version,
            topic: event.topic.clone(),
            depth: event.depth,
            invocation,
        }
    }
}

/// Bytes a delivery's result holds while the cascade collects it: its output or error text,
/// and the payloads it emitted.
fn result_bytes(invocation: &Invocation) -> u64 {
    let result = match &invocation.result {
        Ok(output) => output.as_ref().map_or(0, Vec::len),
        Err(error) => error.to_string().len(),
    };
    invocation
        .emitted
        .iter()
        .fold(result as u64, |total, emitted| {
            total.saturating_add(emitted.payload.len() as u64)
        })
}

/// The error of deliveries an event's spent budget did not allow (`skipped` is filled in
/// when the cascade ends).
fn budget_exhausted(spent: Spent) -> InvokeError {
    let budget = match spent {
        Spent::Invocations(limit) => format!("{limit} invocations"),
        Spent::Bytes(limit) => format!("{limit} bytes of results"),
    };
    InvokeError::EventBudgetExhausted { budget, skipped: 0 }
}

/// wasi-http needs an authority; a request routed by path alone gets `Host: localhost`.
fn with_host_header(mut request: http::Request<Bytes>) -> http::Request<Bytes> {
    if request.uri().authority().is_none() && !request.headers().contains_key(http::header::HOST) {
        request.headers_mut().insert(
            http::header::HOST,
            http::HeaderValue::from_static("localhost"),
        );
    }
    request
}
