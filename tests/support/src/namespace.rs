//! A namespace of one test.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::{Api, Client};

use crate::error::Error;

/// A namespace made for one test. Call [`TestNamespace::cleanup`] at the end of the test; a
/// namespace left behind (a failed test) goes away with the test systems.
#[derive(Clone)]
pub struct TestNamespace {
    name: String,
    client: Client,
}

impl std::fmt::Debug for TestNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestNamespace")
            .field("name", &self.name)
            .finish()
    }
}

/// Label set on every test namespace, to find leftovers by hand.
pub const TEST_NAMESPACE_LABEL: &str = "orkestra.test/namespace";

impl TestNamespace {
    pub(crate) async fn create(client: Client, prefix: &str) -> Result<Self, Error> {
        let api: Api<Namespace> = Api::all(client.clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}-", prefix.trim_end_matches('-'))),
                labels: Some([(TEST_NAMESPACE_LABEL.to_owned(), "true".to_owned())].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        let created = api
            .create(&PostParams::default(), &ns)
            .await
            .map_err(|source| Error::Kube {
                context: format!("creating a test namespace with prefix {prefix:?}"),
                source,
            })?;
        let name = created.metadata.name.ok_or_else(|| Error::Unexpected {
            detail: format!(
                "the namespace created from prefix {prefix:?} came back without a name"
            ),
        })?;
        Ok(Self { name, client })
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The admin client that made the namespace.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// An `Api` for namespaced objects of type `K` in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Deletes the namespace. The namespace controller then removes its contents; this does not
    /// wait for that.
    pub async fn cleanup(self) -> Result<(), Error> {
        let api: Api<Namespace> = Api::all(self.client);
        match api.delete(&self.name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(source) => Err(Error::Kube {
                context: format!("deleting test namespace {}", self.name),
                source,
            }),
        }
    }
}
