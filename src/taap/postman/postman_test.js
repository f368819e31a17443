// taap: checks the status; a token request keeps its access token for the API calls, which
// reuse it until 60 s before it expires (the collection's pre-request script then fetches
// another). `taapExpect` is set on the line above by `taap postman export`.
const taapAnswer = pm.response.text();
pm.test(`status ${taapExpect.status}`, () => {
  pm.expect(pm.response.code, taapAnswer.slice(0, 300)).to.equal(taapExpect.status);
});
if (taapExpect.tokenVersion && pm.response.code === 200) {
  const answer = pm.response.json();
  pm.test('an access token came back', () => {
    pm.expect(answer.access_token).to.be.a('string').and.not.empty;
  });
  const testNow = pm.variables.get('taap_test_now');
  const now = testNow ? parseInt(testNow, 10) : Math.floor(Date.now() / 1000);
  const name = `access_token_${taapExpect.tokenVersion}`;
  pm.collectionVariables.set(name, answer.access_token);
  pm.collectionVariables.set(`${name}_expires_at`, String(now + parseInt(answer.expires_in, 10)));
}
